/* Reference ADD and SUB, int8, with 4-D broadcast. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

/* Both operands to a common scale with left_shift bits of headroom, the second one's
 * sign as given, summed, then rescaled to the output. */
static inline int8_t combine_one(const tp_add_params *params, int8_t a, int8_t b, int32_t sign)
{
    const int32_t shifted1 = tp_shift_left(a + params->input1_offset, params->left_shift);
    const int32_t shifted2 = tp_shift_left(b + params->input2_offset, params->left_shift);
    const int32_t scaled1 = tp_requantize_smaller_than_one(shifted1, params->input1.multiplier, params->input1.shift);
    const int32_t scaled2 = tp_requantize_smaller_than_one(shifted2, params->input2.multiplier, params->input2.shift);
    const int32_t result = tp_requantize_smaller_than_one(scaled1 + sign * scaled2, params->output.multiplier,
                                                          params->output.shift) +
                           params->output_offset;
    return (int8_t)tp_clamp(result, params->activation.min, params->activation.max);
}

static int8_t add_one(const tp_add_params *params, int8_t a, int8_t b)
{
    return combine_one(params, a, b, 1);
}

static int8_t subtract_one(const tp_add_params *params, int8_t a, int8_t b)
{
    return combine_one(params, a, b, -1);
}

void tp_add_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, add_one, params);
}

void tp_sub_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, subtract_one, params);
}
