/* Reference MUL, int8, with 4-D broadcast. */
#include "tp_elementwise.h"

static int32_t mul_one(const tp_mul_params *params, int8_t a, int8_t b)
{
    return tp_mul_element(params, a, b);
}

void tp_mul_s8(const tp_mul_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    TP_BROADCAST_EACH(shape, input1, input2, output, mul_one, params);
}
