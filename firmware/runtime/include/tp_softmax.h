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

#endif /* TP_SOFTMAX_H */
