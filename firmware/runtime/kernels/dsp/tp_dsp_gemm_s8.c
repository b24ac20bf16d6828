/* The int8 matrix kernel under the DSP convolution kernel: two widened columns (tp_dsp.h)
 * times the packed filter, a pair of rows at a time. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"
#include "tp_fixedpoint.h"

/* The output of accumulator acc (bias included) in the short form of tp_dsp.h, from a row's
 * words: left + 1, multiplier, rounding, right. The rounding divide's -1 for a negative h goes
 * with acc's sign instead (the same wherever h != 0; where h = 0, rounding and rounding - 1
 * floor-shift alike as right >= 1), so SMMLAR adds it and the rounding to h. */
static inline int32_t tp_dsp_output_fast(int32_t acc, const int32_t *words)
{
    return tp_smmlar((int32_t)((uint32_t)acc << words[0]), words[1], words[2] + (acc >> 31)) >> words[3];
}

/* The outputs of a pair of rows from `row` on (the second a zero row when row + 1 == rows):
 * acc[2 * column + r] for row + r, in out<column>[row + r]. */
static void tp_dsp_pair_output(const int32_t acc[4], const int32_t *words, const tp_dsp_output_stage *stage,
                               int32_t row, int32_t rows, int8_t *out0, int8_t *out1)
{
    for (int32_t r = 0; r < 2 && row + r < rows; ++r) {
        const int32_t *q = words + 2 + 4 * r;
        for (int32_t i = 0; i < 2; ++i) {
            const int32_t a = acc[2 * i + r];
            int32_t v;
            if (q[0] != 0) {
                v = tp_ssat8(tp_dsp_output_fast(a, q));
            } else {
                v = tp_dsp_requantize(a, stage->multiplier[row + r], stage->shift[row + r]) + stage->output_offset;
                v = tp_clamp(v, stage->activation.min, stage->activation.max);
            }
            (i == 0 ? out0 : out1)[row + r] = (int8_t)v;
        }
    }
}

/* On DSP cores the row-pair loop runs in assembly (tp_dsp_gemm_s8_pairs.S), with every operand
 * in registers: pairs of rows from `words` on, up to words_end or the first pair whose outputs
 * take tp_dsp_pair_output (left + 1 = 0); returns that pair's words, its accumulators in acc. */
#if defined(__ARM_FEATURE_DSP)
#define TP_DSP_GEMM_ASM 1
const int32_t *tp_dsp_pairs(const int32_t *cols, const int32_t *cols_end, const int32_t *w, const int32_t *words,
                            const int32_t *words_end, int8_t *out0, int8_t *out1, int32_t acc[4]);
#endif

void tp_dsp_gemm_s8(const int32_t *cols, int32_t groups, const int32_t *packed_filter, int32_t rows,
                    const tp_dsp_output_stage *stage, int8_t *out0, int8_t *out1)
{
    for (int32_t row = 0; row < rows; row += 2) {
        const int32_t *words = stage->words + TP_DSP_PAIR_WORDS * (row / 2);
        int32_t acc[4];
#if defined(TP_DSP_GEMM_ASM)
        const int32_t *const words_end = stage->words + TP_DSP_PAIR_WORDS * ((rows + 1) / 2);
        const int32_t *const at = tp_dsp_pairs(cols, cols + 4 * groups, packed_filter + row * groups, words, words_end,
                                               out0 + row, out1 + row, acc);
        if (at == words_end) {
            break;
        }
        row += 2 * (int32_t)(at - words) / TP_DSP_PAIR_WORDS;
        words = at;
#else
        const int32_t *w = packed_filter + row * groups;
        acc[0] = acc[2] = words[0];
        acc[1] = acc[3] = words[1];
        for (const int32_t *col = cols, *end = cols + 4 * groups; col != end; col += 4, w += 2) {
            for (int32_t r = 0; r < 2; ++r) {
                const int32_t we = tp_sxtb16(w[r]), wo = tp_sxtb16_ror8(w[r]);
                acc[r] = tp_smlad(col[1], wo, tp_smlad(col[0], we, acc[r]));
                acc[2 + r] = tp_smlad(col[3], wo, tp_smlad(col[2], we, acc[2 + r]));
            }
        }
#endif
        tp_dsp_pair_output(acc, words, stage, row, rows, out0, out1);
    }
}
