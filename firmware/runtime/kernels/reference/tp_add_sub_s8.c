/* Reference ADD and SUB, int8, with 4-D broadcast: one loop, the sign of the
 * second operand chosen per kernel. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

static void add_or_subtract(const tp_add_params *params, const tp_broadcast *shape, const int8_t *input1,
                            const int8_t *input2, int8_t *output, int32_t subtract)
{
    const tp_dims *s1 = &shape->input1_stride;
    const tp_dims *s2 = &shape->input2_stride;
    for (int32_t n = 0; n < shape->output.n; ++n) {
        for (int32_t h = 0; h < shape->output.h; ++h) {
            for (int32_t w = 0; w < shape->output.w; ++w) {
                const int8_t *in1 = input1 + n * s1->n + h * s1->h + w * s1->w;
                const int8_t *in2 = input2 + n * s2->n + h * s2->h + w * s2->w;
                for (int32_t c = 0; c < shape->output.c; ++c) {
                    /* Both operands to a common scale with left_shift bits of headroom. */
                    const int32_t shifted1 = tp_shift_left(in1[c * s1->c] + params->input1_offset, params->left_shift);
                    const int32_t shifted2 = tp_shift_left(in2[c * s2->c] + params->input2_offset, params->left_shift);
                    const int32_t scaled1 = tp_requantize_smaller_than_one(shifted1, params->input1.multiplier,
                                                                           params->input1.shift);
                    const int32_t scaled2 = tp_requantize_smaller_than_one(shifted2, params->input2.multiplier,
                                                                           params->input2.shift);
                    const int32_t combined = subtract ? scaled1 - scaled2 : scaled1 + scaled2;
                    const int32_t result = tp_requantize_smaller_than_one(combined, params->output.multiplier,
                                                                          params->output.shift) +
                                           params->output_offset;
                    *output++ = (int8_t)tp_clamp(result, params->activation.min, params->activation.max);
                }
            }
        }
    }
}

void tp_add_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    add_or_subtract(params, shape, input1, input2, output, 0);
}

void tp_sub_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    add_or_subtract(params, shape, input1, input2, output, 1);
}
