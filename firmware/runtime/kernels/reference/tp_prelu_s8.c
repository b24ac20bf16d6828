/* Reference PRELU, int8, with alpha broadcast over the input (4-D). */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

static int8_t prelu_one(const tp_prelu_params *params, int8_t x, int8_t alpha)
{
    const int32_t centered = x + params->input_offset;
    int32_t scaled;
    if (centered >= 0) {
        scaled = tp_requantize(centered, params->positive.multiplier, params->positive.shift);
    } else {
        /* At most 255 * 255 in magnitude: no overflow. */
        const int32_t product = centered * (alpha + params->alpha_offset);
        scaled = tp_requantize(product, params->negative.multiplier, params->negative.shift);
    }
    return (int8_t)tp_clamp(scaled + params->output_offset, INT8_MIN, INT8_MAX);
}

void tp_prelu_s8(const tp_prelu_params *params, const tp_broadcast *shape, const int8_t *input,
                 const int8_t *alpha, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input, alpha, output, prelu_one, params);
}
