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

/* The pair loop below keeps every operand in registers, r7 included: r7 is Thumb's frame pointer
 * when not optimizing (-O0), where GCC refuses it in asm, so such builds take the C loop. */
#if defined(__ARM_FEATURE_DSP) && defined(__OPTIMIZE__)
#define TP_DSP_GEMM_ASM 1
/* Per group of four: 3 LDRD, 4 SXTB16 and 8 SMLAD do 16 MACs (a<column><row>). */
#define TP_DSP_GROUP_2X2 \
    "ldrd r0, r1, [%[col]], #16\n\t" \
    "ldrd r2, r3, [%[col], #-8]\n\t" \
    "ldrd r4, r5, [%[w]], #8\n\t" \
    "sxtb16 r6, r4\n\t" \
    "sxtb16 r4, r4, ror #8\n\t" \
    "smlad %[a00], r0, r6, %[a00]\n\t" \
    "smlad %[a10], r2, r6, %[a10]\n\t" \
    "smlad %[a00], r1, r4, %[a00]\n\t" \
    "smlad %[a10], r3, r4, %[a10]\n\t" \
    "sxtb16 r6, r5\n\t" \
    "sxtb16 r5, r5, ror #8\n\t" \
    "smlad %[a01], r0, r6, %[a01]\n\t" \
    "smlad %[a11], r2, r6, %[a11]\n\t" \
    "smlad %[a01], r1, r5, %[a01]\n\t" \
    "smlad %[a11], r3, r5, %[a11]\n\t"
/* The short form of one accumulator with the row's words in r5 (left + 1), r6 (multiplier),
 * r3 (rounding), r4 (right), saturated to int8 and stored at out, which moves on by one. */
#define TP_DSP_OUTPUT(acc, out) \
    "add r11, r3, " acc ", asr #31\n\t" \
    "lsl " acc ", " acc ", r5\n\t" \
    "smmlar " acc ", " acc ", r6, r11\n\t" \
    "asr " acc ", " acc ", r4\n\t" \
    "ssat " acc ", #8, " acc "\n\t" \
    "strb " acc ", [" out "], #1\n\t"

/* Pairs of rows from `words` on, up to words_end or the first pair whose outputs take
 * tp_dsp_pair_output (left + 1 = 0): returns that pair's words, its accumulators in acc. All
 * in registers: the pointers the group loop does not need wait on the stack. */
static const int32_t *tp_dsp_pairs(const int32_t *cols, const int32_t *cols_end, const int32_t *w,
                                   const int32_t *words, const int32_t *words_end, int8_t *out0, int8_t *out1,
                                   int32_t acc[4])
{
    register const int32_t *r_words __asm__("r0") = words;
    register int8_t *r_out0 __asm__("r1") = out0;
    register int8_t *r_out1 __asm__("r2") = out1;
    register const int32_t *r_words_end __asm__("r3") = words_end;
    register const int32_t *r_cols __asm__("r4") = cols;
    register int32_t r5 __asm__("r5"), r6 __asm__("r6");
    register int32_t a00 __asm__("r7"), a01 __asm__("r8"), a10 __asm__("r9"), a11 __asm__("r10");
    register const int32_t *col __asm__("r11");
    register const int32_t *r_w __asm__("r12") = w;
    register const int32_t *r_cols_end __asm__("r14") = cols_end;
    __asm__("cmp r0, r3\n\t"
            "beq 9f\n"
            "1:\n\t"
            "ldrd %[a00], %[a01], [r0]\n\t"
            "mov %[a10], %[a00]\n\t"
            "mov %[a11], %[a01]\n\t"
            "mov %[col], r4\n\t"
            "push {r0-r4}\n\t"
            "sub r6, %[end], %[col]\n\t"
            "tst r6, #16\n\t"
            "bne 3f\n"
            "2:\n\t" TP_DSP_GROUP_2X2
            "3:\n\t" TP_DSP_GROUP_2X2
            "cmp %[col], %[end]\n\t"
            "bne 2b\n\t"
            "pop {r0-r2}\n\t"
            "ldrd r5, r6, [r0, #8]\n\t"
            "cmp r5, #0\n\t"
            "beq 8f\n\t"
            "ldrd r3, r4, [r0, #16]\n\t"
            TP_DSP_OUTPUT("%[a00]", "r1")
            TP_DSP_OUTPUT("%[a10]", "r2")
            "ldrd r5, r6, [r0, #24]\n\t"
            "ldrd r3, r4, [r0, #32]\n\t"
            TP_DSP_OUTPUT("%[a01]", "r1")
            TP_DSP_OUTPUT("%[a11]", "r2")
            "adds r0, #40\n\t"
            "pop {r3, r4}\n\t"
            "cmp r0, r3\n\t"
            "bne 1b\n\t"
            "b 9f\n"
            "8:\n\t"
            "pop {r3, r4}\n"
            "9:"
            : "+r"(r_words), "+r"(r_out0), "+r"(r_out1), "+r"(r_words_end), "+r"(r_cols), "=&r"(r5), "=&r"(r6),
              [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [col] "=&r"(col),
              [w] "+r"(r_w), [end] "+r"(r_cols_end)
            :
            : "cc", "memory");
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    return r_words;
}
#undef TP_DSP_GROUP_2X2
#undef TP_DSP_OUTPUT
#endif /* TP_DSP_GEMM_ASM */

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
