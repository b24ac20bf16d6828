/* Reference LEAKY_RELU, int16 (16x8): the int8 arithmetic, clamped to int16. */
#include "tp_elementwise.h"

void tp_leaky_relu_s16(const tp_leaky_relu_params *params, int32_t size, const int16_t *input,
                       int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)tp_clamp(tp_leaky_relu_element(params, input[i]), INT16_MIN, INT16_MAX);
    }
}
