/* Reference LEAKY_RELU, int8. */
#include "tp_elementwise.h"

void tp_leaky_relu_s8(const tp_leaky_relu_params *params, int32_t size, const int8_t *input,
                      int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)tp_clamp(tp_leaky_relu_element(params, input[i]), INT8_MIN, INT8_MAX);
    }
}
