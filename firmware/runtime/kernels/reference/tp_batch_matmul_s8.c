/* Reference BATCH_MATMUL, int8 x int8 -> int8, broadcast over up to three batch dimensions. */
#include "tp_batch_matmul.h"

#include "tp_fixedpoint.h"

/* One rows x cols product of the matrices at lhs and rhs, written row by row to output. The
 * sizes and steps are read into locals once: stores through int8_t pointers may alias them. */
static int8_t *tp_matmul_one_s8(const tp_batch_matmul_params *params, const tp_batch_matmul_dims *dims,
                                const int8_t *lhs, const int8_t *rhs, int8_t *output)
{
    const int32_t rows = dims->rows, cols = dims->cols, depth = dims->depth;
    const int32_t lhs_row_step = dims->lhs_row_step, lhs_depth_step = dims->lhs_depth_step;
    const int32_t rhs_depth_step = dims->rhs_depth_step, rhs_col_step = dims->rhs_col_step;
    const int32_t lhs_offset = params->lhs_offset, rhs_offset = params->rhs_offset;
    const int32_t multiplier = params->requant.multiplier, shift = params->requant.shift;
    const int32_t output_offset = params->output_offset;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t c = 0; c < cols; ++c) {
            const int8_t *a = lhs + r * lhs_row_step;
            const int8_t *b = rhs + c * rhs_col_step;
            int32_t acc = 0;
            for (int32_t k = 0; k < depth; ++k) {
                acc += (*a + lhs_offset) * (*b + rhs_offset);
                a += lhs_depth_step;
                b += rhs_depth_step;
            }
            acc = tp_requantize(acc, multiplier, shift) + output_offset;
            *output++ = (int8_t)tp_clamp(acc, -128, 127);
        }
    }
    return output;
}

void tp_batch_matmul_s8(const tp_batch_matmul_params *params, const tp_batch_matmul_dims *dims,
                        const int8_t *lhs, const int8_t *rhs, int8_t *output)
{
    for (int32_t b0 = 0; b0 < dims->batch[0]; ++b0) {
        const int8_t *lhs0 = lhs + b0 * dims->lhs_batch_stride[0];
        const int8_t *rhs0 = rhs + b0 * dims->rhs_batch_stride[0];
        for (int32_t b1 = 0; b1 < dims->batch[1]; ++b1) {
            const int8_t *lhs1 = lhs0 + b1 * dims->lhs_batch_stride[1];
            const int8_t *rhs1 = rhs0 + b1 * dims->rhs_batch_stride[1];
            for (int32_t b2 = 0; b2 < dims->batch[2]; ++b2) {
                output = tp_matmul_one_s8(params, dims, lhs1 + b2 * dims->lhs_batch_stride[2],
                                          rhs1 + b2 * dims->rhs_batch_stride[2], output);
            }
        }
    }
}
