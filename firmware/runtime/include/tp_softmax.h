#ifndef TP_SOFTMAX_H
#define TP_SOFTMAX_H

#include "tp_types.h"

/* Softmax along the innermost dimension, int8 in, int8 out (scale 1/256,
 * zero point -128), as TFLite's gemmlowp-based reference.
 * exp_table[k] is exp(-k * input_scale * beta) in Q0.31 for k = 0..255, the
 * distance below the row maximum, already rounded as TFLite rounds it, and 0
 * where TFLite leaves the element out (below diff_min). */
void tp_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth, const int8_t *input,
                   int8_t *output);

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

#endif /* TP_SOFTMAX_H */
