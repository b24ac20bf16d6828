/* Reference ADD, int16 (16x8), with 4-D broadcast: TFLM's general-scale int16 path. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

static inline int16_t add_one_s16(const tp_add_params *params, int16_t a, int16_t b)
{
    const int32_t shifted1 = tp_shift_left(a + params->input1_offset, params->left_shift);
    const int32_t shifted2 = tp_shift_left(b + params->input2_offset, params->left_shift);
    const int32_t scaled1 = tp_requantize_smaller_than_one(shifted1, params->input1.multiplier, params->input1.shift);
    const int32_t scaled2 = tp_requantize_smaller_than_one(shifted2, params->input2.multiplier, params->input2.shift);
    const int32_t result = tp_requantize_smaller_than_one(scaled1 + scaled2, params->output.multiplier,
                                                          params->output.shift) +
                           params->output_offset;
    return (int16_t)tp_clamp(result, params->activation.min, params->activation.max);
}

void tp_add_s16(const tp_add_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output)
{
    const tp_dims *s1 = &shape->input1_stride;
    const tp_dims *s2 = &shape->input2_stride;
    int16_t *out = output;
    for (int32_t n = 0; n < shape->output.n; ++n) {
        for (int32_t h = 0; h < shape->output.h; ++h) {
            for (int32_t w = 0; w < shape->output.w; ++w) {
                const int16_t *in1 = input1 + n * s1->n + h * s1->h + w * s1->w;
                const int16_t *in2 = input2 + n * s2->n + h * s2->h + w * s2->w;
                for (int32_t c = 0; c < shape->output.c; ++c) {
                    *out++ = add_one_s16(params, in1[c * s1->c], in2[c * s2->c]);
                }
            }
        }
    }
}
