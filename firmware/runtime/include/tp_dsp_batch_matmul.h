/* BATCH_MATMUL for cores with the Arm DSP extension (kernels/dsp/): the reference's product
 * (tp_batch_matmul.h) on int16 pairs and SMLAD, bit for bit the same output.
 */
#ifndef TP_DSP_BATCH_MATMUL_H
#define TP_DSP_BATCH_MATMUL_H

#include "tp_batch_matmul.h"

/* params and dims as for tp_batch_matmul_s8. output_words: left + 1, multiplier, rounding, right
 * of tp_dsp.h's short requantization where the generator proved it exact for every accumulator
 * the operands allow (left + 1 = 1), else left + 1 = 0 (tp_dsp_requantize). The right-hand columns are widened col_block at a
 * time (at least 2, or every column). scratch (word-aligned): 4 * ceil(depth / 2) * (col_block + 2)
 * bytes, the widened columns of a block, then two widened left-hand rows. */
void tp_batch_matmul_s8_dsp(const tp_batch_matmul_params *params, const int32_t *output_words,
                            const tp_batch_matmul_dims *dims, int32_t col_block, const int8_t *lhs, const int8_t *rhs, int8_t *output, int8_t *scratch);

#endif /* TP_DSP_BATCH_MATMUL_H */
