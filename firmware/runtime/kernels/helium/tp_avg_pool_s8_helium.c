/* AVERAGE_POOL_2D, int8, on MVE (tp_helium_elementwise.h): eight channels per vector.
 *
 * The reference divides the window's sum s by its element count d with C's truncation after
 * adding or subtracting d / 2: sign(s) * floor((|s| + d / 2) / d). MVE has no vector divide;
 * with n = |s| + d / 2 and m = floor(2^31 / d) + 1 (one scalar divide per window), VQDMULH
 * gives floor(n * m / 2^31) = floor(n / d + n * e / (d * 2^31)) where e = m * d - 2^31 is in
 * (0, d]: the second term is below 1 / d (so the floor is unchanged) while n * d < 2^31, which
 * holds for d <= 256 as n <= 128.5 * d. For d = 1, m = 2^31 - 1 and n + 1 instead of n give
 * floor((n + 1) * (1 - 2^-31)) = n.
 */
#include <arm_mve.h>

#include "tp_helium_elementwise.h"

/* sign(s) * floor((|s| + half) / d), four lanes, with m and half as above. */
__attribute__((always_inline)) static inline int32x4_t rounded_divide(int32x4_t sum, int32_t half, int32_t m)
{
    const int32x4_t quotient = vqdmulhq_n_s32(vaddq_n_s32(vabsq_s32(sum), half), m);
    const int32x4_t sign = vshrq_n_s32(sum, 31);
    return vsubq_s32(veorq_s32(quotient, sign), sign);
}

/* One group of eight channels of one window, divided, clamped and stored; `tail` under predicate p. */
__attribute__((always_inline)) static inline void avg_group(const int8_t *window, int32_t row, int32_t depth,
                                                            int32_t rows, int32_t cols, int32_t half, int32_t m,
                                                            int16x8_t lo, int16x8_t hi, int8_t *out, mve_pred16_t p,
                                                            int tail)
{
    int16x8_t sum = vdupq_n_s16(0);
    for (int32_t y = 0; y < rows; ++y) {
        const int8_t *x = window + y * row;
        for (int32_t n = 0; n < cols; ++n) {
            sum = vaddq_s16(sum, tail ? vldrbq_z_s16(x, p) : vldrbq_s16(x));
            x += depth;
        }
    }
    const int32x4_t even = rounded_divide(vmovlbq_s16(sum), half, m);
    const int32x4_t odd = rounded_divide(vmovltq_s16(sum), half, m);
    /* Averages of int8 values fit int16: narrowing puts the lanes back in channel order. */
    int16x8_t value = vmovntq_s32(vmovnbq_s32(sum, even), odd);
    value = vminq_s16(vmaxq_s16(value, lo), hi);
    if (tail) {
        vstrbq_p_s16(out, value, p);
    } else {
        vstrbq_s16(out, value);
    }
}

void tp_avg_pool_s8_helium(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                           const tp_dims *output_dims, int8_t *output)
{
    const int32_t depth = input_dims->c, row = input_dims->w * depth;
    const int16x8_t lo = vdupq_n_s16((int16_t)params->activation.min);
    const int16x8_t hi = vdupq_n_s16((int16_t)params->activation.max);
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
                const int32_t rows = y_end - y_start, cols = x_end - x_start, count = rows * cols;
                const int32_t half = count == 1 ? 1 : count / 2;
                const int32_t m = count == 1 ? INT32_MAX : (int32_t)(0x80000000u / (uint32_t)count + 1u);
                const int8_t *window = in_batch + y_start * row + x_start * depth;
                int32_t c = 0;
                for (; c + 8 <= depth; c += 8) {
                    avg_group(window + c, row, depth, rows, cols, half, m, lo, hi, output + c, 0, 0);
                }
                if (c < depth) {
                    avg_group(window + c, row, depth, rows, cols, half, m, lo, hi, output + c,
                              vctp16q((uint32_t)(depth - c)), 1);
                }
                output += depth;
            }
        }
    }
}
