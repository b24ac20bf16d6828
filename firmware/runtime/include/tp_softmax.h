#ifndef TP_SOFTMAX_H
#define TP_SOFTMAX_H

#include "tp_fixedpoint.h"
#include "tp_types.h"

/* One row of SOFTMAX or LOG_SOFTMAX: its largest input (in *row_max) and the sum of
 * exp_table[row_max - x] over the row, each term divided by 2^accum_integer_bits
 * (rounded), the fixed-point accumulator both kernels start from. */
static inline int32_t tp_softmax_row_sum(const int32_t *exp_table, const int8_t *in, int32_t depth,
                                         int32_t accum_integer_bits, int32_t *row_max)
{
    int32_t largest = INT8_MIN;
    for (int32_t c = 0; c < depth; ++c) {
        largest = TP_MAX(largest, in[c]);
    }
    int32_t sum_of_exps = 0;
    for (int32_t c = 0; c < depth; ++c) {
        sum_of_exps += tp_rounding_divide_by_pot(exp_table[largest - in[c]], accum_integer_bits);
    }
    *row_max = largest;
    return sum_of_exps;
}

/* Softmax along the innermost dimension, int8 in, int8 out (scale 1/256,
 * zero point -128), as TFLite's gemmlowp-based reference.
 * exp_table[k] is exp(-k * input_scale * beta) in Q0.31 for k = 0..255, the
 * distance below the row maximum, already rounded as TFLite rounds it, and 0
 * where TFLite leaves the element out (below diff_min). */
void tp_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth, const int8_t *input,
                   int8_t *output);

/* The same softmax with an int16 output (scale 1/65536, zero point -32768), as TFLite's
 * reference for int8 in, int16 out. */
void tp_softmax_s8_s16(const int32_t *exp_table, int32_t rows, int32_t depth, const int8_t *input,
                       int16_t *output);

/* LOG_SOFTMAX along the innermost dimension, int8 in, int8 out (scale 16/256,
 * zero point 127), as TFLite's reference: exp_table as for tp_softmax_s8 (beta 1),
 * summed in Q12.19; the natural log of the sum in Q5.26 at run time; each input's
 * distance below the row maximum rescaled to Q5.26 by input_multiplier << input_left_shift,
 * minus the log, down to 1/16 steps. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;        /* > 0 */
    int32_t reverse_scaling_divisor; /* Q0.31 multiplier undoing the input rescale */
    int32_t reverse_scaling_shift;   /* <= 0 */
    int32_t diff_min;                /* distances below -diff_min are left out */
} tp_log_softmax_params;

void tp_log_softmax_s8(const tp_log_softmax_params *params, const int32_t *exp_table, int32_t rows,
                       int32_t depth, const int8_t *input, int8_t *output);

/* int16 -> int16 SOFTMAX (TFLite's SoftmaxInt16): the distance below the row maximum rescaled by
 * (multiplier, shift) to [-65535, 0] ~ [-10, 0], exp() and 1/(1+x) from 513-entry interpolated
 * tables (exp_lut, recip_lut); the output (scale 1/32768, zero point 0) doubles as scratch. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_shift;
} tp_softmax_s16_params;

void tp_softmax_s16(const tp_softmax_s16_params *params, const int16_t *exp_lut, const int16_t *recip_lut,
                    int32_t rows, int32_t depth, const int16_t *input, int16_t *output);

#endif /* TP_SOFTMAX_H */
