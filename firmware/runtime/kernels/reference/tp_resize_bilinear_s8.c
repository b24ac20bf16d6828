/* Reference RESIZE_BILINEAR, int8 (tp_resize.h). Every term fits int32: |value| <= 128 times
 * weights whose absolute values sum to at most 2048 * 2048 per output (the generator checks
 * the weights' range), so the int64 products TFLM forms never need more. */
#include "tp_resize.h"

void tp_resize_bilinear_s8(const tp_dims *input_dims, const int8_t *input, const tp_resize_axis *rows,
                           const tp_resize_axis *cols, const tp_dims *output_dims, int8_t *output)
{
    const int32_t channels = output_dims->c;
    const int32_t line = input_dims->w * channels;
    int8_t *out = output;

    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * line;
        for (int32_t y = 0; y < output_dims->h; ++y) {
            const int32_t wy = rows->weight[y];
            const int8_t *row0 = image + rows->lower[y] * line;
            const int8_t *row1 = image + rows->upper[y] * line;
            for (int32_t x = 0; x < output_dims->w; ++x) {
                const int32_t wx = cols->weight[x];
                /* The four neighbours' weights in 1/2^20ths: (lower, lower), (upper row, lower
                 * column), (lower row, upper column), (upper, upper). */
                const int32_t w00 = (1024 - wy) * (1024 - wx), w10 = wy * (1024 - wx);
                const int32_t w01 = (1024 - wy) * wx, w11 = wy * wx;
                const int8_t *p00 = row0 + cols->lower[x] * channels, *p01 = row0 + cols->upper[x] * channels;
                const int8_t *p10 = row1 + cols->lower[x] * channels, *p11 = row1 + cols->upper[x] * channels;
                for (int32_t c = 0; c < channels; ++c) {
                    const int32_t sum = p00[c] * w00 + p10[c] * w10 + p01[c] * w01 + p11[c] * w11;
                    /* Half away from zero, then toward zero: TFLM's rounding (TFLITE_SINGLE_ROUNDING off). */
                    *out++ = (int8_t)((sum + (sum > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20));
                }
            }
        }
    }
}
