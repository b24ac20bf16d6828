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
    const tp_dims *s1 = &shape->input1_stride;
    const tp_dims *s2 = &shape->input2_stride;
    for (int32_t n = 0; n < shape->output.n; ++n) {
        for (int32_t h = 0; h < shape->output.h; ++h) {
            for (int32_t w = 0; w < shape->output.w; ++w) {
                const int8_t *in = input + n * s1->n + h * s1->h + w * s1->w;
                const int8_t *al = alpha + n * s2->n + h * s2->h + w * s2->w;
                for (int32_t c = 0; c < shape->output.c; ++c) {
                    *output++ = prelu_one(params, in[c * s1->c], al[c * s2->c]);
                }
            }
        }
    }
}
