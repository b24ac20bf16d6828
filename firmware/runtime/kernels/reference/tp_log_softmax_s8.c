/* Reference LOG_SOFTMAX, int8 -> int8. */
#include "tp_softmax.h"

#include "tp_fixedpoint.h"
#include "tp_gemmlowp.h"

#define TP_LOG_SOFTMAX_ACCUM_INTEGER_BITS 12 /* the sum of exponentials, Q12.19 */
#define TP_LOG_SOFTMAX_DIFF_INTEGER_BITS 5   /* scaled distances and the log, Q5.26 */
#define TP_LOG_SOFTMAX_OUTPUT_INTEGER_BITS 4 /* the output, 1/16 steps */

void tp_log_softmax_s8(const tp_log_softmax_params *params, const int32_t *exp_table, int32_t rows,
                       int32_t depth, const int8_t *input, int8_t *output)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *in = input + r * depth;
        int8_t *out = output + r * depth;
        int32_t row_max;
        const int32_t sum_of_exps =
            tp_softmax_row_sum(exp_table, in, depth, TP_LOG_SOFTMAX_ACCUM_INTEGER_BITS, &row_max);
        /* The row maximum alone contributes 1.0, so the log is >= 0. */
        const int32_t log_sum = tp_log_x_for_x_ge_1(sum_of_exps, TP_LOG_SOFTMAX_ACCUM_INTEGER_BITS,
                                                    TP_LOG_SOFTMAX_DIFF_INTEGER_BITS);
        /* Distances whose result would fall below the Q5.26 range are left at the minimum. */
        const int32_t lowest_with_log = (int32_t)((uint32_t)log_sum + 0x80000000u);
        const int32_t cutoff = TP_MAX(params->diff_min - 1,
                                      tp_requantize(lowest_with_log, params->reverse_scaling_divisor,
                                                    params->reverse_scaling_shift));
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - row_max;
            if (diff > cutoff) {
                const int32_t diff_q5 = tp_requantize(diff, params->input_multiplier, params->input_left_shift);
                const int32_t value = tp_rounding_divide_by_pot(
                    (int32_t)((uint32_t)diff_q5 - (uint32_t)log_sum),
                    31 - TP_LOG_SOFTMAX_DIFF_INTEGER_BITS - TP_LOG_SOFTMAX_OUTPUT_INTEGER_BITS);
                out[c] = (int8_t)tp_clamp(value + INT8_MAX, INT8_MIN, INT8_MAX);
            } else {
                out[c] = INT8_MIN;
            }
        }
    }
}
