/* Reference ADD and SUB, int16 (16x8), with 4-D broadcast: TFLM's general-scale int16
 * path, the int8 arithmetic with left_shift 15. */
#include "tp_elementwise.h"

static int32_t add_one(const tp_add_params *params, int16_t a, int16_t b)
{
    return tp_add_sub_element(params, a, b, 1);
}

static int32_t subtract_one(const tp_add_params *params, int16_t a, int16_t b)
{
    return tp_add_sub_element(params, a, b, -1);
}

void tp_add_s16(const tp_add_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output)
{
    TP_BROADCAST_EACH_T(int16_t, shape, input1, input2, output, add_one, params);
}

void tp_sub_s16(const tp_add_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output)
{
    TP_BROADCAST_EACH_T(int16_t, shape, input1, input2, output, subtract_one, params);
}
