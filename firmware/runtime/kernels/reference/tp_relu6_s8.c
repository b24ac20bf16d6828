/* Reference RELU6, int8: TFLite Micro clamps the raw input between the input's
 * quantized 0 and 6 and does not rescale to the output. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

void tp_relu6_s8(int32_t lower, int32_t upper, int32_t size, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)tp_clamp(input[i], lower, upper);
    }
}
