/* Reference MAXIMUM and MINIMUM, int8, with 4-D broadcast: one walk, the
 * comparison chosen per kernel. */
#include "tp_elementwise.h"

static void select_each(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output,
                        int32_t take_larger)
{
    const tp_dims *s1 = &shape->input1_stride;
    const tp_dims *s2 = &shape->input2_stride;
    for (int32_t n = 0; n < shape->output.n; ++n) {
        for (int32_t h = 0; h < shape->output.h; ++h) {
            for (int32_t w = 0; w < shape->output.w; ++w) {
                const int8_t *in1 = input1 + n * s1->n + h * s1->h + w * s1->w;
                const int8_t *in2 = input2 + n * s2->n + h * s2->h + w * s2->w;
                for (int32_t c = 0; c < shape->output.c; ++c) {
                    const int8_t a = in1[c * s1->c];
                    const int8_t b = in2[c * s2->c];
                    /* Ties give the same code either way. */
                    *output++ = take_larger ? (a > b ? a : b) : (a < b ? a : b);
                }
            }
        }
    }
}

void tp_maximum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    select_each(shape, input1, input2, output, 1);
}

void tp_minimum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    select_each(shape, input1, input2, output, 0);
}
