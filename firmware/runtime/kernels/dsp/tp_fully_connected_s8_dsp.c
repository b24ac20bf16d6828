/* FULLY_CONNECTED for the DSP extension: four output channels per block share each unpacked
 * input word, and their weights are interleaved into aligned words at generation time (see
 * tp_dsp.h) so one pointer walks them in pairs (LDRD): per input word 3 loads, 10 unpacks and
 * 8 SMLADs do 16 MACs. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"
#include "tp_fixedpoint.h"

/* acc[0..3] += dot(x, the four rows' words at w) over one input word. */
#define TP_FC_WORD_1X4(x, w, a0, a1, a2, a3)                                                        \
    do {                                                                                            \
        const int32_t xw_ = tp_read_s8x4(x);                                                        \
        const int32_t xe_ = tp_sxtb16(xw_), xo_ = tp_sxtb16_ror8(xw_);                              \
        const int32_t w0_ = (w)[0], w1_ = (w)[1], w2_ = (w)[2], w3_ = (w)[3];                       \
        a0 = tp_smlad(xe_, tp_sxtb16(w0_), a0);                                                     \
        a0 = tp_smlad(xo_, tp_sxtb16_ror8(w0_), a0);                                                \
        a1 = tp_smlad(xe_, tp_sxtb16(w1_), a1);                                                     \
        a1 = tp_smlad(xo_, tp_sxtb16_ror8(w1_), a1);                                                \
        a2 = tp_smlad(xe_, tp_sxtb16(w2_), a2);                                                     \
        a2 = tp_smlad(xo_, tp_sxtb16_ror8(w2_), a2);                                                \
        a3 = tp_smlad(xe_, tp_sxtb16(w3_), a3);                                                     \
        a3 = tp_smlad(xo_, tp_sxtb16_ror8(w3_), a3);                                                \
    } while (0)

/* Two input words per iteration halve the loop's own instructions. Not inlined and not
 * scheduled: GCC's first scheduling pass hoists the loads into spills. */
__attribute__((noinline, optimize("no-schedule-insns"))) const int32_t *tp_dsp_fc_block_1x4(
    const int8_t *x, const int32_t *w, int32_t k, const int32_t *start, int32_t acc[4])
{
    int32_t a0 = start[0], a1 = start[1], a2 = start[2], a3 = start[3];
    const int8_t *const x_end = x + (k & ~7);
    while (x != x_end) {
        TP_FC_WORD_1X4(x, w, a0, a1, a2, a3);
        TP_FC_WORD_1X4(x + 4, w + 4, a0, a1, a2, a3);
        x += 8;
        w += 8;
    }
    if (k & 4) {
        TP_FC_WORD_1X4(x, w, a0, a1, a2, a3);
        x += 4;
        w += 4;
    }
    const int32_t tail = k & 3;
    const int8_t *const wt = (const int8_t *)w;
    for (int32_t n = 0; n < tail; ++n) {
        const int32_t xv = x[n];
        a0 += xv * wt[n];
        a1 += xv * wt[tail + n];
        a2 += xv * wt[2 * tail + n];
        a3 += xv * wt[3 * tail + n];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w + tail;
}

/* acc[0..1] = start[0..1] + dot(x, two row-major rows, k bytes apart) over k inputs: the rows
 * past the last block still share each unpacked input word in pairs. */
__attribute__((noinline)) static void tp_fc_pair(const int8_t *x, const int8_t *w, int32_t k, const int32_t *start,
                                                 int32_t acc[2])
{
    int32_t a0 = start[0], a1 = start[1];
    for (int32_t n = k >> 2; n > 0; --n) {
        const int32_t xw = tp_read_s8x4(x);
        const int32_t xe = tp_sxtb16(xw), xo = tp_sxtb16_ror8(xw);
        const int32_t w0 = tp_read_s8x4(w), w1 = tp_read_s8x4(w + k);
        a0 = tp_smlad(xe, tp_sxtb16(w0), a0);
        a0 = tp_smlad(xo, tp_sxtb16_ror8(w0), a0);
        a1 = tp_smlad(xe, tp_sxtb16(w1), a1);
        a1 = tp_smlad(xo, tp_sxtb16_ror8(w1), a1);
        x += 4;
        w += 4;
    }
    for (int32_t n = k & 3; n > 0; --n) {
        const int32_t xv = *x++;
        a0 += xv * w[0];
        a1 += xv * w[k];
        ++w;
    }
    acc[0] = a0;
    acc[1] = a1;
}

__attribute__((noinline)) int32_t tp_dsp_fc_dot(const int8_t *x, const int8_t *w, int32_t k, int32_t start)
{
    int32_t a = start;
    for (int32_t n = k >> 2; n > 0; --n) {
        const int32_t xw = tp_read_s8x4(x), ww = tp_read_s8x4(w);
        x += 4;
        w += 4;
        a = tp_smlad(tp_sxtb16(xw), tp_sxtb16(ww), a);
        a = tp_smlad(tp_sxtb16_ror8(xw), tp_sxtb16_ror8(ww), a);
    }
    for (int32_t n = k & 3; n > 0; --n) {
        a += *x++ * *w++;
    }
    return a;
}

/* Where a row's accumulator (bias included) goes: its requantization entries and its output byte. */
typedef struct {
    const int32_t *multiplier, *shift;
    int32_t quant_step; /* 1 per channel, 0 per tensor */
    int32_t offset, lo, hi;
} tp_fc_output;

static inline int8_t tp_fc_requantize(tp_fc_output *s, int32_t acc)
{
    const int32_t v = tp_dsp_requantize(acc, *s->multiplier, *s->shift) + s->offset;
    s->multiplier += s->quant_step;
    s->shift += s->quant_step;
    return (int8_t)tp_clamp(v, s->lo, s->hi);
}

void tp_fully_connected_s8_dsp(const tp_fc_params *params, const tp_per_channel_requant *quant,
                               int32_t batches, int32_t accum_depth, int32_t output_depth,
                               const int8_t *input, const int32_t *packed_filter, const int32_t *effective_bias,
                               int8_t *output)
{
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        const int32_t *w = packed_filter;
        int8_t *out = output + b * output_depth;
        const int32_t *bias = effective_bias; /* each row's accumulator starts from its bias */
        tp_fc_output s = {quant->multiplier, quant->shift, params->per_channel ? 1 : 0,
                          params->output_offset, params->activation.min, params->activation.max};
        for (int32_t blocks = output_depth >> 2; blocks > 0; --blocks) {
            int32_t acc[4];
            w = tp_dsp_fc_block_1x4(x, w, accum_depth, bias, acc);
            bias += 4;
            out[0] = tp_fc_requantize(&s, acc[0]);
            out[1] = tp_fc_requantize(&s, acc[1]);
            out[2] = tp_fc_requantize(&s, acc[2]);
            out[3] = tp_fc_requantize(&s, acc[3]);
            out += 4;
        }
        const int8_t *row = (const int8_t *)w; /* the rows past the last block, row-major */
        if (output_depth & 2) {
            int32_t acc[2];
            tp_fc_pair(x, row, accum_depth, bias, acc);
            bias += 2;
            out[0] = tp_fc_requantize(&s, acc[0]);
            out[1] = tp_fc_requantize(&s, acc[1]);
            out += 2;
            row += 2 * accum_depth;
        }
        if (output_depth & 1) {
            *out = tp_fc_requantize(&s, tp_dsp_fc_dot(x, row, accum_depth, *bias));
        }
    }
}
