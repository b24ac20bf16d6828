/* Reference MUL, int8, with 4-D broadcast. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

static int8_t mul_one(const tp_mul_params *params, int8_t a, int8_t b)
{
    const int32_t product = (a + params->input1_offset) * (b + params->input2_offset);
    const int32_t scaled =
        tp_requantize(product, params->output.multiplier, params->output.shift) + params->output_offset;
    return (int8_t)tp_clamp(scaled, params->activation.min, params->activation.max);
}

void tp_mul_s8(const tp_mul_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, mul_one, params);
}
