/* Reference DEQUANTIZE int8 -> float32. */
#include "tp_quantize.h"

void tp_dequantize_s8_f32(float scale, int32_t zero_point, int32_t size, const int8_t *input,
                          float *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}
