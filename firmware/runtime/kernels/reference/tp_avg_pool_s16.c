/* Reference AVERAGE_POOL_2D, int16 (16x8): the int8 kernel's int32 sum and rounding. */
#include "tp_pooling.h"

#include "tp_fixedpoint.h"

void tp_avg_pool_s16(const tp_pool_params *params, const tp_dims *input_dims, const int16_t *input,
                     const tp_dims *output_dims, int16_t *output)
{
    const int32_t depth = input_dims->c;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int16_t *in_batch = input + b * input_dims->h * input_dims->w * depth;
        for (int32_t out_y = 0; out_y < output_dims->h; ++out_y) {
            int32_t y_start, y_end;
            tp_pool_window(out_y, params->stride.h, params->padding.h, params->filter.h, input_dims->h, &y_start,
                           &y_end);
            for (int32_t out_x = 0; out_x < output_dims->w; ++out_x) {
                int32_t x_start, x_end;
                tp_pool_window(out_x, params->stride.w, params->padding.w, params->filter.w, input_dims->w,
                               &x_start, &x_end);
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                for (int32_t c = 0; c < depth; ++c) {
                    int32_t acc = 0;
                    for (int32_t y = y_start; y < y_end; ++y) {
                        for (int32_t x = x_start; x < x_end; ++x) {
                            acc += in_batch[(y * input_dims->w + x) * depth + c];
                        }
                    }
                    /* Ties away from zero, as the int8 kernel (C division truncates). */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    *output++ = (int16_t)tp_clamp(acc, params->activation.min, params->activation.max);
                }
            }
        }
    }
}
