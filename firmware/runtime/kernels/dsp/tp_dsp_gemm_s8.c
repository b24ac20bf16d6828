/* The int8 matrix kernel under the DSP convolution kernel. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"
#include "tp_fixedpoint.h"

/* Two columns times two rows (column 1 follows column 0, row 1 follows row 0, k bytes apart):
 * four accumulators, starting from acc; per word, 4 loads, 8 unpacks and 8 SMLADs do 16 MACs. */
static void tp_dsp_block_2x2(const int8_t *col, const int8_t *row, int32_t k, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3]; /* a<column><row> */
    const int8_t *const col_end = col + (k & ~3);
#if defined(__ARM_FEATURE_DSP)
    /* The loop below in 21 instructions per word and 14 registers, no spill (GCC's allocation
     * spills one and adds both pointers separately): both loads of a pair after the
     * post-increment of the first, at offset k - 4; two words per iteration, an odd count
     * entering at the second. */
    if (col != col_end) {
        int32_t x0, x0o, x1, x1o, w, we;
#define TP_DSP_WORD_2X2 \
    "ldr %[x0], [%[col]], #4\n\t" \
    "ldr %[x1], [%[col], %[km4]]\n\t" \
    "ldr %[w], [%[row]], #4\n\t" \
    "sxtb16 %[x0o], %[x0], ror #8\n\t" \
    "sxtb16 %[x0], %[x0]\n\t" \
    "sxtb16 %[x1o], %[x1], ror #8\n\t" \
    "sxtb16 %[x1], %[x1]\n\t" \
    "sxtb16 %[we], %[w]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a00], %[x0], %[we], %[a00]\n\t" \
    "smlad %[a00], %[x0o], %[w], %[a00]\n\t" \
    "smlad %[a10], %[x1], %[we], %[a10]\n\t" \
    "smlad %[a10], %[x1o], %[w], %[a10]\n\t" \
    "ldr %[w], [%[row], %[km4]]\n\t" \
    "sxtb16 %[we], %[w]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a01], %[x0], %[we], %[a01]\n\t" \
    "smlad %[a01], %[x0o], %[w], %[a01]\n\t" \
    "smlad %[a11], %[x1], %[we], %[a11]\n\t" \
    "smlad %[a11], %[x1o], %[w], %[a11]\n\t"
        __asm__("sub %[x0], %[end], %[col]\n\t"
                "tst %[x0], #4\n\t"
                "bne 2f\n"
                "1:\n\t" TP_DSP_WORD_2X2
                "2:\n\t" TP_DSP_WORD_2X2
                "cmp %[col], %[end]\n\t"
                "bne 1b"
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [col] "+r"(col),
                  [row] "+r"(row), [x0] "=&r"(x0), [x0o] "=&r"(x0o), [x1] "=&r"(x1), [x1o] "=&r"(x1o),
                  [w] "=&r"(w), [we] "=&r"(we)
                : [km4] "r"(k - 4), [end] "r"(col_end)
                : "cc", "memory");
#undef TP_DSP_WORD_2X2
    }
#else
    while (col != col_end) {
        const int32_t x0 = tp_read_s8x4(col), x1 = tp_read_s8x4(col + k);
        const int32_t x0e = tp_sxtb16(x0), x0o = tp_sxtb16_ror8(x0);
        const int32_t x1e = tp_sxtb16(x1), x1o = tp_sxtb16_ror8(x1);
        int32_t w = tp_read_s8x4(row);
        int32_t we = tp_sxtb16(w), wo = tp_sxtb16_ror8(w);
        a00 = tp_smlad(x0e, we, a00);
        a00 = tp_smlad(x0o, wo, a00);
        a10 = tp_smlad(x1e, we, a10);
        a10 = tp_smlad(x1o, wo, a10);
        w = tp_read_s8x4(row + k);
        we = tp_sxtb16(w);
        wo = tp_sxtb16_ror8(w);
        a01 = tp_smlad(x0e, we, a01);
        a01 = tp_smlad(x0o, wo, a01);
        a11 = tp_smlad(x1e, we, a11);
        a11 = tp_smlad(x1o, wo, a11);
        col += 4;
        row += 4;
    }
#endif
    for (int32_t n = k & 3; n > 0; --n) {
        const int32_t x0 = col[0], x1 = col[k], w0 = row[0], w1 = row[k];
        a00 += x0 * w0;
        a01 += x0 * w1;
        a10 += x1 * w0;
        a11 += x1 * w1;
        ++col;
        ++row;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* One column times two rows, starting from acc. */
static void tp_dsp_block_1x2(const int8_t *col, const int8_t *row, int32_t k, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int8_t *const col_end = col + (k & ~3);
    while (col != col_end) {
        const int32_t x = tp_read_s8x4(col);
        const int32_t xe = tp_sxtb16(x), xo = tp_sxtb16_ror8(x);
        const int32_t w0 = tp_read_s8x4(row), w1 = tp_read_s8x4(row + k);
        a0 = tp_smlad(xe, tp_sxtb16(w0), a0);
        a0 = tp_smlad(xo, tp_sxtb16_ror8(w0), a0);
        a1 = tp_smlad(xe, tp_sxtb16(w1), a1);
        a1 = tp_smlad(xo, tp_sxtb16_ror8(w1), a1);
        col += 4;
        row += 4;
    }
    for (int32_t n = k & 3; n > 0; --n) {
        const int32_t x = *col++;
        a0 += x * row[0];
        a1 += x * row[k];
        ++row;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* a plus one column times one row (the last row of an odd count). */
static int32_t tp_dsp_dot(const int8_t *col, const int8_t *row, int32_t k, int32_t a)
{
    for (int32_t n = k >> 2; n > 0; --n) {
        const int32_t x = tp_read_s8x4(col), w = tp_read_s8x4(row);
        col += 4;
        row += 4;
        a = tp_smlad(tp_sxtb16(x), tp_sxtb16(w), a);
        a = tp_smlad(tp_sxtb16_ror8(x), tp_sxtb16_ror8(w), a);
    }
    for (int32_t n = k & 3; n > 0; --n) {
        a += *col++ * *row++;
    }
    return a;
}

/* The int8 output of accumulator acc (bias included) in the short form of tp_dsp.h, from a
 * row's output words: left + 1, multiplier, rounding, right. */
static inline int8_t tp_dsp_output_fast(int32_t acc, int32_t left1, int32_t multiplier, int32_t rounding,
                                        int32_t right, int32_t lo, int32_t hi)
{
    const int32_t high = tp_smmulr((int32_t)((uint32_t)acc << left1), multiplier);
    const int32_t v = (high + (high >> 31) + rounding) >> right;
    return (int8_t)tp_clamp(v, lo, hi);
}

/* The same when the activation clamps to the whole int8 range (no activation, or ReLU with
 * output zero point -128): one saturation. */
static inline int8_t tp_dsp_output_fast_int8(int32_t acc, int32_t left1, int32_t multiplier, int32_t rounding,
                                             int32_t right)
{
    const int32_t high = tp_smmulr((int32_t)((uint32_t)acc << left1), multiplier);
    return (int8_t)tp_ssat8((high + (high >> 31) + rounding) >> right);
}

/* The same through tp_dsp_requantize, for the channels outside the short form's range. */
static inline int8_t tp_dsp_output_general(const tp_dsp_output_stage *stage, int32_t row, int32_t acc, int32_t lo,
                                           int32_t hi)
{
    const int32_t v = tp_dsp_requantize(acc, stage->multiplier[row], stage->shift[row]) + stage->output_offset;
    return (int8_t)tp_clamp(v, lo, hi);
}

/* Both columns times rows [0, 2 * pairs), a pair of rows at a time, walking the weights, the
 * row words and the outputs by pointer. int8_range: the activation clamps to the whole int8
 * range; a constant in each of the two copies. */
static inline __attribute__((always_inline)) void
tp_dsp_row_pairs_2cols(const int8_t *cols, const int8_t *row, int32_t pairs, int32_t k,
                       const tp_dsp_output_stage *stage, int8_t *out0, int8_t *out1, int int8_range)
{
    /* Locals, so the int8 stores (which may alias anything) do not force reloads. */
    const int32_t lo = stage->activation.min, hi = stage->activation.max;
    const int32_t *c = stage->channels, *m = stage->multiplier;
    const int32_t *const c_end = c + 2 * TP_DSP_CHANNEL_WORDS * pairs;
    for (; c != c_end; c += 2 * TP_DSP_CHANNEL_WORDS, m += 2, row += 2 * k, out0 += 2, out1 += 2) {
        /* Only the biases are read before the accumulation: the rest would wait on the stack. */
        int32_t acc[4] = {c[0], c[TP_DSP_CHANNEL_WORDS], c[0], c[TP_DSP_CHANNEL_WORDS]};
        tp_dsp_block_2x2(cols, row, k, acc);
        /* All row words into locals before the first int8 store (which may alias them). */
        const int32_t l0 = c[1], l1 = c[TP_DSP_CHANNEL_WORDS + 1];
        if (l0 != 0 && l1 != 0) {
            const int32_t m0 = m[0], m1 = m[1];
            const int32_t rs0 = c[2], rn0 = c[3], rs1 = c[TP_DSP_CHANNEL_WORDS + 2], rn1 = c[TP_DSP_CHANNEL_WORDS + 3];
            int8_t y00, y01, y10, y11;
            if (int8_range) {
                y00 = tp_dsp_output_fast_int8(acc[0], l0, m0, rn0, rs0);
                y10 = tp_dsp_output_fast_int8(acc[2], l0, m0, rn0, rs0);
                y01 = tp_dsp_output_fast_int8(acc[1], l1, m1, rn1, rs1);
                y11 = tp_dsp_output_fast_int8(acc[3], l1, m1, rn1, rs1);
            } else {
                y00 = tp_dsp_output_fast(acc[0], l0, m0, rn0, rs0, lo, hi);
                y10 = tp_dsp_output_fast(acc[2], l0, m0, rn0, rs0, lo, hi);
                y01 = tp_dsp_output_fast(acc[1], l1, m1, rn1, rs1, lo, hi);
                y11 = tp_dsp_output_fast(acc[3], l1, m1, rn1, rs1, lo, hi);
            }
            out0[0] = y00;
            out0[1] = y01;
            out1[0] = y10;
            out1[1] = y11;
        } else {
            const int32_t r = (int32_t)(m - stage->multiplier);
            out0[0] = tp_dsp_output_general(stage, r, acc[0], lo, hi);
            out0[1] = tp_dsp_output_general(stage, r + 1, acc[1], lo, hi);
            out1[0] = tp_dsp_output_general(stage, r, acc[2], lo, hi);
            out1[1] = tp_dsp_output_general(stage, r + 1, acc[3], lo, hi);
        }
    }
}

void tp_dsp_gemm_s8(const int8_t *cols, int32_t col_count, const int8_t *weights, int32_t rows, int32_t k,
                    const tp_dsp_output_stage *stage, int8_t *out0, int8_t *out1)
{
    const int32_t lo = stage->activation.min, hi = stage->activation.max;
    const int32_t *const multiplier = stage->multiplier;
    const int32_t pairs = rows / 2;
    if (col_count == 2) {
        if (lo == -128 && hi == 127) {
            tp_dsp_row_pairs_2cols(cols, weights, pairs, k, stage, out0, out1, 1);
        } else {
            tp_dsp_row_pairs_2cols(cols, weights, pairs, k, stage, out0, out1, 0);
        }
    } else {
        for (int32_t r = 0; r < 2 * pairs; r += 2) {
            const int8_t *row = weights + r * k;
            const int32_t *c0 = stage->channels + TP_DSP_CHANNEL_WORDS * r, *c1 = c0 + TP_DSP_CHANNEL_WORDS;
            int32_t acc[2] = {c0[0], c1[0]};
            tp_dsp_block_1x2(cols, row, k, acc);
            const int32_t l0 = c0[1], l1 = c1[1];
            if (l0 != 0 && l1 != 0) {
                const int8_t y0 = tp_dsp_output_fast(acc[0], l0, multiplier[r], c0[3], c0[2], lo, hi);
                const int8_t y1 = tp_dsp_output_fast(acc[1], l1, multiplier[r + 1], c1[3], c1[2], lo, hi);
                out0[r] = y0;
                out0[r + 1] = y1;
            } else {
                out0[r] = tp_dsp_output_general(stage, r, acc[0], lo, hi);
                out0[r + 1] = tp_dsp_output_general(stage, r + 1, acc[1], lo, hi);
            }
        }
    }
    if (rows % 2 != 0) {
        const int32_t r = rows - 1;
        const int8_t *row = weights + r * k;
        const int32_t bias = stage->channels[TP_DSP_CHANNEL_WORDS * r];
        out0[r] = tp_dsp_output_general(stage, r, tp_dsp_dot(cols, row, k, bias), lo, hi);
        if (col_count == 2) {
            out1[r] = tp_dsp_output_general(stage, r, tp_dsp_dot(cols + k, row, k, bias), lo, hi);
        }
    }
}
