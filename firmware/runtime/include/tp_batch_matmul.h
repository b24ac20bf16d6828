/* BATCH_MATMUL, int8: a batch of matrix products between two int8 tensors (two
 * activations, as TFLite converts tf.matmul and Keras MultiHeadAttention, or an
 * activation and a constant), with numpy-style broadcasting over the batch
 * dimensions.
 *
 * output[b][r][c] = clamp(requant(sum_k (lhs[b][r][k] + lhs_offset) *
 *                                       (rhs[b][k][c] + rhs_offset)) + output_offset, -128, 127)
 *
 * TFLite Micro's reference kernel transposes an operand where adj_x / adj_y ask
 * for it and runs one accumulation per output in int32; here the generator turns
 * adj_x / adj_y into element strides and folds the batch dimensions (size-1 ones
 * dropped, neighbours that step alike merged, a batch over which the right-hand
 * side broadcasts folded into the rows), so the kernel walks both operands where
 * they lie. Every accumulation is the same int32 sum, so the output is the same
 * bit for bit. BATCH_MATMUL has no fused activation: the clamp is int8's range.
 */
#ifndef TP_BATCH_MATMUL_H
#define TP_BATCH_MATMUL_H

#include "tp_types.h"

/* Batch dimensions left after folding: a rank-5 product has at most three. */
#define TP_BATCH_MATMUL_BATCH_DIMS 3

typedef struct {
    int32_t lhs_offset;    /* minus the left-hand side's zero point */
    int32_t rhs_offset;    /* minus the right-hand side's zero point */
    int32_t output_offset; /* the output's zero point */
    tp_requant requant;    /* lhs_scale * rhs_scale / output_scale */
} tp_batch_matmul_params;

/* The output is [batch[0]][batch[1]][batch[2]][rows][cols], contiguous. Matrix
 * (b0, b1, b2) of an operand starts b0 * stride[0] + b1 * stride[1] + b2 * stride[2]
 * elements into it (stride 0 where it broadcasts); within it, the left-hand element
 * (r, k) is at r * lhs_row_step + k * lhs_depth_step and the right-hand element
 * (k, c) at k * rhs_depth_step + c * rhs_col_step. Unused batch dimensions have size 1. */
typedef struct {
    int32_t batch[TP_BATCH_MATMUL_BATCH_DIMS];
    int32_t lhs_batch_stride[TP_BATCH_MATMUL_BATCH_DIMS];
    int32_t rhs_batch_stride[TP_BATCH_MATMUL_BATCH_DIMS];
    int32_t rows;
    int32_t cols;
    int32_t depth;
    int32_t lhs_row_step;
    int32_t lhs_depth_step;
    int32_t rhs_depth_step;
    int32_t rhs_col_step;
} tp_batch_matmul_dims;

void tp_batch_matmul_s8(const tp_batch_matmul_params *params, const tp_batch_matmul_dims *dims,
                        const int8_t *lhs, const int8_t *rhs, int8_t *output);

#endif /* TP_BATCH_MATMUL_H */
