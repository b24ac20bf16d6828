/* Reference SQUARED_DIFFERENCE, int8, with 4-D broadcast. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

static int8_t squared_difference_one(const tp_squared_difference_params *params, int8_t a, int8_t b)
{
    const int32_t shifted1 = tp_shift_left(a + params->input1_offset, params->left_shift);
    const int32_t shifted2 = tp_shift_left(b + params->input2_offset, params->left_shift);
    const int32_t scaled1 = tp_requantize_smaller_than_one(shifted1, params->input1.multiplier, params->input1.shift);
    const int32_t scaled2 = tp_requantize_smaller_than_one(shifted2, params->input2.multiplier, params->input2.shift);
    /* |difference| <= 255 * 2^7, so its square fits in int32. */
    const int32_t difference = scaled1 - scaled2;
    const int32_t result = tp_requantize(difference * difference, params->output.multiplier, params->output.shift) +
                           params->output_offset;
    return (int8_t)tp_clamp(result, INT8_MIN, INT8_MAX);
}

void tp_squared_difference_s8(const tp_squared_difference_params *params, const tp_broadcast *shape,
                              const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, squared_difference_one, params);
}
