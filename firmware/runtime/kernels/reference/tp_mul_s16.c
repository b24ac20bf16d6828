/* Reference MUL, int16 (16x8), with 4-D broadcast: the int8 arithmetic on int16 codes. */
#include "tp_elementwise.h"

static int32_t mul_one(const tp_mul_params *params, int16_t a, int16_t b)
{
    return tp_mul_element(params, a, b);
}

void tp_mul_s16(const tp_mul_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output)
{
    TP_BROADCAST_EACH_T(int16_t, shape, input1, input2, output, mul_one, params);
}
