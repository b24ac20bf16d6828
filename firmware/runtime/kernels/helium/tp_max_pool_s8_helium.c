/* MAX_POOL_2D, int8, on MVE (tp_helium_elementwise.h): sixteen channels per vector, the last
 * group of fewer tail-predicated (no byte past the tensors is read or written). */
#include <arm_mve.h>

#include "tp_helium_elementwise.h"

/* One group of sixteen channels of one window, clamped and stored; `tail` under predicate p. */
__attribute__((always_inline)) static inline void max_group(const int8_t *window, int32_t row, int32_t depth,
                                                            int32_t rows, int32_t cols, int8x16_t lo, int8x16_t hi,
                                                            int8_t *out, mve_pred16_t p, int tail)
{
    int8x16_t max = lo; /* the clamp's lower bound: max(max(x), lo) */
    for (int32_t y = 0; y < rows; ++y) {
        const int8_t *x = window + y * row;
        for (int32_t n = 0; n < cols; ++n) {
            max = vmaxq_s8(max, tail ? vldrbq_z_s8(x, p) : vldrbq_s8(x));
            x += depth;
        }
    }
    if (tail) {
        vstrbq_p_s8(out, vminq_s8(max, hi), p);
    } else {
        vstrbq_s8(out, vminq_s8(max, hi));
    }
}

void tp_max_pool_s8_helium(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                           const tp_dims *output_dims, int8_t *output)
{
    const int32_t depth = input_dims->c, row = input_dims->w * depth;
    const int8x16_t lo = vdupq_n_s8((int8_t)params->activation.min), hi = vdupq_n_s8((int8_t)params->activation.max);
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *in_batch = input + b * input_dims->h * row;
        for (int32_t out_y = 0; out_y < output_dims->h; ++out_y) {
            int32_t y_start, y_end;
            tp_pool_window(out_y, params->stride.h, params->padding.h, params->filter.h, input_dims->h, &y_start,
                           &y_end);
            for (int32_t out_x = 0; out_x < output_dims->w; ++out_x) {
                int32_t x_start, x_end;
                tp_pool_window(out_x, params->stride.w, params->padding.w, params->filter.w, input_dims->w,
                               &x_start, &x_end);
                const int8_t *window = in_batch + y_start * row + x_start * depth;
                const int32_t rows = y_end - y_start, cols = x_end - x_start;
                int32_t c = 0;
                for (; c + 16 <= depth; c += 16) {
                    max_group(window + c, row, depth, rows, cols, lo, hi, output + c, 0, 0);
                }
                if (c < depth) {
                    max_group(window + c, row, depth, rows, cols, lo, hi, output + c, vctp8q((uint32_t)(depth - c)), 1);
                }
                output += depth;
            }
        }
    }
}
