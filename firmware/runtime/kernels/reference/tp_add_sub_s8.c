/* Reference ADD and SUB, int8, with 4-D broadcast. */
#include "tp_elementwise.h"

static int32_t add_one(const tp_add_params *params, int8_t a, int8_t b)
{
    return tp_add_sub_element(params, a, b, 1);
}

static int32_t subtract_one(const tp_add_params *params, int8_t a, int8_t b)
{
    return tp_add_sub_element(params, a, b, -1);
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
