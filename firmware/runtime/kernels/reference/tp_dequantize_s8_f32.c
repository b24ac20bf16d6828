/* Reference DEQUANTIZE int8 -> float32 and int16 -> float32. TFLM multiplies in double and
 * rounds once to float; the exact product of a float scale and a 17-bit integer fits a double,
 * and one float multiply rounds that same exact product once, so float is enough. */
#include "tp_quantize.h"

void tp_dequantize_s8_f32(float scale, int32_t zero_point, int32_t size, const int8_t *input,
                          float *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}

void tp_dequantize_s16_f32(float scale, int32_t zero_point, int32_t size, const int16_t *input,
                           float *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}
