/* BATCH_MATMUL for the DSP extension: both operands widened to int16 with their offsets
 * added ((x + offset) lies in [-255, 255]), so one SMLAD does two of the reference's MACs
 * with no offset term left; a block of right-hand columns is widened once and every pair of
 * left-hand rows, widened in turn, runs against it two columns at a time (4 loads and 4 SMLADs
 * for 8 MACs). SMLAD wraps modulo 2^32 like the reference's int32 sum: the same accumulators. */
#include "tp_dsp_batch_matmul.h"

#include "tp_dsp.h"
#include "tp_dsp_simd.h"
#include "tp_fixedpoint.h"

/* Two int16 lanes, lo in the low half. */
static inline int32_t tp_bmm_pack(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* n values at src, step elements apart, plus offset, as int16 pairs (the last high half 0 for odd n). */
static void tp_bmm_widen(const int8_t *src, int32_t step, int32_t n, int32_t offset, int32_t *dst)
{
    int32_t k = 0;
    for (; k + 1 < n; k += 2) {
        *dst++ = tp_bmm_pack(src[k * step] + offset, src[(k + 1) * step] + offset);
    }
    if (k < n) {
        *dst = tp_bmm_pack(src[k * step] + offset, 0);
    }
}

/* The four dot products of rows a0, a1 with columns b0, b1, `words` int16 pairs each. */
static void tp_bmm_dot_2x2(const int32_t *a0, const int32_t *a1, const int32_t *b0, const int32_t *b1,
                           int32_t words, int32_t acc[4])
{
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (const int32_t *const end = a0 + words; a0 != end;) {
        const int32_t x0 = *a0++, x1 = *a1++, y0 = *b0++, y1 = *b1++;
        s00 = tp_smlad(x0, y0, s00);
        s01 = tp_smlad(x0, y1, s01);
        s10 = tp_smlad(x1, y0, s10);
        s11 = tp_smlad(x1, y1, s11);
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* The output of accumulator acc. words: left + 1, multiplier, rounding, right of tp_dsp.h's
 * short requantization, which the generator proved exact for every accumulator the operands'
 * ranges allow (then one SMMLAR, a shift and SSAT, as tp_dsp_gemm_s8's), or left + 1 = 0 for
 * the general tp_dsp_requantize. */
static inline int8_t tp_bmm_output(const tp_batch_matmul_params *params, const int32_t *words, int32_t acc)
{
    if (words[0] != 0) {
        return (int8_t)tp_ssat8(tp_smmlar((int32_t)((uint32_t)acc << words[0]), words[1], words[2] + (acc >> 31)) >>
                                words[3]);
    }
    acc = tp_dsp_requantize(acc, params->requant.multiplier, params->requant.shift) + params->output_offset;
    return (int8_t)tp_clamp(acc, -128, 127);
}

/* One product, its columns col_block at a time; scratch as tp_batch_matmul_s8_dsp's. */
static void tp_bmm_one(const tp_batch_matmul_params *params, const int32_t *output_words,
                       const tp_batch_matmul_dims *dims, int32_t col_block, const int8_t *lhs, const int8_t *rhs, int8_t *output, int32_t *scratch)
{
    const int32_t words = (dims->depth + 1) / 2;
    int32_t *const row0 = scratch + col_block * words;
    int32_t *const row1 = row0 + words;
    for (int32_t c0 = 0; c0 < dims->cols; c0 += col_block) {
        const int32_t block = dims->cols - c0 < col_block ? dims->cols - c0 : col_block;
        for (int32_t c = 0; c < block; ++c) {
            tp_bmm_widen(rhs + (c0 + c) * dims->rhs_col_step, dims->rhs_depth_step, dims->depth, params->rhs_offset,
                         scratch + c * words);
        }
        for (int32_t r = 0; r < dims->rows; r += 2) {
            const int32_t pair = dims->rows - r > 1;
            tp_bmm_widen(lhs + r * dims->lhs_row_step, dims->lhs_depth_step, dims->depth, params->lhs_offset, row0);
            if (pair) {
                tp_bmm_widen(lhs + (r + 1) * dims->lhs_row_step, dims->lhs_depth_step, dims->depth,
                             params->lhs_offset, row1);
            }
            int8_t *const out0 = output + r * dims->cols + c0;
            int8_t *const out1 = out0 + dims->cols;
            for (int32_t c = 0; c < block; c += 2) {
                const int32_t both = block - c > 1;
                const int32_t *const col0 = scratch + c * words;
                int32_t acc[4];
                /* A lone last row or column is paired with itself; its copy is not written. */
                tp_bmm_dot_2x2(row0, pair ? row1 : row0, col0, both ? col0 + words : col0, words, acc);
                out0[c] = tp_bmm_output(params, output_words, acc[0]);
                if (both) {
                    out0[c + 1] = tp_bmm_output(params, output_words, acc[1]);
                }
                if (pair) {
                    out1[c] = tp_bmm_output(params, output_words, acc[2]);
                    if (both) {
                        out1[c + 1] = tp_bmm_output(params, output_words, acc[3]);
                    }
                }
            }
        }
    }
}

void tp_batch_matmul_s8_dsp(const tp_batch_matmul_params *params, const int32_t *output_words,
                            const tp_batch_matmul_dims *dims, int32_t col_block, const int8_t *lhs, const int8_t *rhs, int8_t *output, int8_t *scratch)
{
    int32_t *const words = (int32_t *)(void *)scratch;
    const int32_t matrix = dims->rows * dims->cols;
    for (int32_t b0 = 0; b0 < dims->batch[0]; ++b0) {
        const int8_t *lhs0 = lhs + b0 * dims->lhs_batch_stride[0];
        const int8_t *rhs0 = rhs + b0 * dims->rhs_batch_stride[0];
        for (int32_t b1 = 0; b1 < dims->batch[1]; ++b1) {
            const int8_t *lhs1 = lhs0 + b1 * dims->lhs_batch_stride[1];
            const int8_t *rhs1 = rhs0 + b1 * dims->rhs_batch_stride[1];
            for (int32_t b2 = 0; b2 < dims->batch[2]; ++b2) {
                tp_bmm_one(params, output_words, dims, col_block, lhs1 + b2 * dims->lhs_batch_stride[2],
                           rhs1 + b2 * dims->rhs_batch_stride[2], output, words);
                output += matrix;
            }
        }
    }
}
