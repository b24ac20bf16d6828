/* DEPTHWISE_CONV_2D for the DSP extension, one channel at a time over int16 planes.
 *
 * Per group of four input channels, the input lines a band of output lines reads (image rows,
 * or columns for images narrow and tall: tp_dsp_dw_layout) are unpacked into one plane per
 * channel: int16 with the input offset already added, and zero in the padding (lines and
 * columns), so every output sums all kh * kw taps without a test. Lines the next band also
 * reads move up the plane instead of being unpacked again, so each input line is read once per
 * channel group; with depth multiplier 1 that is what lets the kernel run over its own input
 * (output == input) where the generator proved no line is overwritten before it is read
 * (lowering/conv.py). Then each output channel's outputs are summed in registers and
 * requantized at once (tp_dsp.h), the m output channels of a depth multiplier m one after the
 * other over their input channel's plane: for three-tap filter rows at stride 1 or 2, four
 * outputs per step with eight multiplies per filter row for twelve products (int16 pairs from
 * word reads, SMLAD and SMLAxy); other filters tap by tap.
 */
#include <string.h>

#include "tp_dsp.h"
#include "tp_dsp_simd.h"

/* Two int16 lanes from a plane (an unaligned word access where a column is odd). */
static inline int32_t tp_dsp_dw_read(const int16_t *p)
{
    int32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

static inline void tp_dsp_dw_write(int16_t *p, int32_t word)
{
    memcpy(p, &word, sizeof word);
}

/* Whether the 3x3 SIMD rows below take the filter (stride 1 or 2, no dilation along rows): their
 * filter rows are packed as (w0, w1), (w1, w2) pairs, other filters one word per tap.
 * lowering/conv.py packs by the same rule. */
static int tp_dsp_dw_simd(int32_t kh, int32_t kw, int32_t stride_w, int32_t dilation_w)
{
    return kh == 3 && kw == 3 && dilation_w == 1 && (stride_w == 1 || stride_w == 2);
}

/* One line of `count` pixels, `step` bytes apart from src (channel c0 of the first), of n channels
 * into the planes at dst (planes plane_step apart): dst[c][i] = src[i * step + c] + offset. */
static void tp_dsp_dw_unpack_line(const int8_t *src, int32_t count, int32_t step, int32_t n, int32_t offset,
                                  int16_t *dst, int32_t plane_step)
{
    if (n < 4) {
        for (int32_t c = 0; c < n; ++c) {
            for (int32_t i = 0; i < count; ++i) {
                dst[c * plane_step + i] = (int16_t)(src[i * step + c] + offset);
            }
        }
        return;
    }
    const int32_t offset_pair = (int32_t)(((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16));
    int16_t *d0 = dst, *d1 = dst + plane_step, *d2 = dst + 2 * plane_step, *d3 = dst + 3 * plane_step;
    int32_t i = 0;
    for (; i + 1 < count; i += 2, src += 2 * step) {
        const int32_t p = tp_read_s8x4(src), q = tp_read_s8x4(src + step);
        const int32_t even_p = tp_sxtab16(offset_pair, p), odd_p = tp_sxtab16_ror8(offset_pair, p);
        const int32_t even_q = tp_sxtab16(offset_pair, q), odd_q = tp_sxtab16_ror8(offset_pair, q);
        tp_dsp_dw_write(d0 + i, tp_pkhbt16(even_p, even_q));
        tp_dsp_dw_write(d1 + i, tp_pkhbt16(odd_p, odd_q));
        tp_dsp_dw_write(d2 + i, tp_pkhtb16(even_q, even_p));
        tp_dsp_dw_write(d3 + i, tp_pkhtb16(odd_q, odd_p));
    }
    if (i < count) {
        d0[i] = (int16_t)(src[0] + offset);
        d1[i] = (int16_t)(src[1] + offset);
        d2[i] = (int16_t)(src[2] + offset);
        d3[i] = (int16_t)(src[3] + offset);
    }
}

/* One channel's requantization (tp_dsp.h): the short form where its word left + 1 (short_form)
 * is not 0, else tp_dsp_requantize. For the short form the generator has already doubled the
 * channel's weights and bias (the shift by left + 1 = 1), so the accumulator needs no shift. */
typedef struct {
    int32_t bias, short_form, right, rounding, multiplier, shift, output_offset, lo, hi;
} tp_dsp_dw_channel;

/* How the SIMD rows requantize, fixed per copy of their loop: the short form with the clamp
 * range the whole int8 range (one SSAT, what most models' activations give) or narrower, or
 * the general form. */
enum { TP_DSP_DW_SATURATE, TP_DSP_DW_CLAMP, TP_DSP_DW_GENERAL };

__attribute__((always_inline)) static inline int8_t tp_dsp_dw_output(int32_t acc, tp_dsp_dw_channel ch, int mode)
{
    if (mode == TP_DSP_DW_GENERAL) {
        return (int8_t)tp_clamp(tp_dsp_requantize(acc, ch.multiplier, ch.shift) + ch.output_offset, ch.lo, ch.hi);
    }
    /* (h + (h < 0 ? -1 : 0) + rounding) >> right with h = SMMULR(acc, multiplier), as in tp_dsp.h; the
     * sign is taken from acc instead: it is h's (multiplier > 0) except where h = 0, and there
     * (rounding - 1) >> right = rounding >> right = the output offset, since right >= 1. */
    const int32_t value = tp_smmlar(acc, ch.multiplier, ch.rounding + (acc >> 31)) >> ch.right;
    return (int8_t)(mode == TP_DSP_DW_SATURATE ? tp_ssat8(value) : tp_clamp(value, ch.lo, ch.hi));
}

/* The three filter rows of four outputs at stride 1 (x at the first one's first tap, word-aligned,
 * filter rows row_step int16 apart): six columns per filter row, words a, b, c, eight multiplies
 * for twelve products. w: (w0, w1), (w1, w2) per filter row. On DSP cores in assembly: GCC's
 * register allocation spills around the twelve live values; LDRD takes two words per load. */
__attribute__((always_inline)) static inline void tp_dsp_dw_quad_stride1(const int16_t *x, int32_t row_step,
                                                                         const int32_t *w, int32_t *s)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], a, b, c, w01, w12;
    const int32_t step = row_step * (int32_t)sizeof(int16_t);
#define TP_DSP_DW_ROW_S1(offset)                                                                          \
    "ldrd %[a], %[b], [%[x]]\n\t"                                                                         \
    "ldr %[c], [%[x], #8]\n\t"                                                                            \
    "ldrd %[w01], %[w12], [%[w], #" offset "]\n\t"                                                        \
    "add %[x], %[x], %[step]\n\t"                                                                         \
    "smlad %[s0], %[a], %[w01], %[s0]\n\t"                                                                \
    "smlabt %[s0], %[b], %[w12], %[s0]\n\t"                                                               \
    "smlatb %[s1], %[a], %[w01], %[s1]\n\t"                                                               \
    "smlad %[s1], %[b], %[w12], %[s1]\n\t"                                                                \
    "smlad %[s2], %[b], %[w01], %[s2]\n\t"                                                                \
    "smlabt %[s2], %[c], %[w12], %[s2]\n\t"                                                               \
    "smlatb %[s3], %[b], %[w01], %[s3]\n\t"                                                               \
    "smlad %[s3], %[c], %[w12], %[s3]\n\t"
    __asm__(TP_DSP_DW_ROW_S1("0") TP_DSP_DW_ROW_S1("8") TP_DSP_DW_ROW_S1("16")
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [x] "+r"(x), [a] "=&r"(a), [b] "=&r"(b),
              [c] "=&r"(c), [w01] "=&r"(w01), [w12] "=&r"(w12)
            : [w] "r"(w), [step] "r"(step)
            : "memory");
#undef TP_DSP_DW_ROW_S1
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
#else
    for (int32_t fy = 0; fy < 3; ++fy, x += row_step) {
        const int32_t w01 = w[2 * fy], w12 = w[2 * fy + 1];
        const int32_t a = tp_dsp_dw_read(x), b = tp_dsp_dw_read(x + 2), c = tp_dsp_dw_read(x + 4);
        s[0] = tp_smlabt(b, w12, tp_smlad(a, w01, s[0]));
        s[1] = tp_smlad(b, w12, tp_smlatb(a, w01, s[1]));
        s[2] = tp_smlabt(c, w12, tp_smlad(b, w01, s[2]));
        s[3] = tp_smlad(c, w12, tp_smlatb(b, w01, s[3]));
    }
#endif
}

/* The same at stride 2: output i reads columns 2i..2i+2, so four outputs read words a..e. */
__attribute__((always_inline)) static inline void tp_dsp_dw_quad_stride2(const int16_t *x, int32_t row_step,
                                                                         const int32_t *w, int32_t *s)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3], a, b, c, w01, w12;
    const int32_t step = row_step * (int32_t)sizeof(int16_t);
#define TP_DSP_DW_ROW_S2(offset)                                                                          \
    "ldrd %[a], %[b], [%[x]]\n\t"                                                                         \
    "ldrd %[w01], %[w12], [%[w], #" offset "]\n\t"                                                        \
    "smlad %[s0], %[a], %[w01], %[s0]\n\t"                                                                \
    "smlabt %[s0], %[b], %[w12], %[s0]\n\t"                                                               \
    "ldrd %[a], %[c], [%[x], #8]\n\t"                                                                     \
    "smlad %[s1], %[b], %[w01], %[s1]\n\t"                                                                \
    "smlabt %[s1], %[a], %[w12], %[s1]\n\t"                                                               \
    "smlad %[s2], %[a], %[w01], %[s2]\n\t"                                                                \
    "smlabt %[s2], %[c], %[w12], %[s2]\n\t"                                                               \
    "ldr %[a], [%[x], #16]\n\t"                                                                           \
    "add %[x], %[x], %[step]\n\t"                                                                         \
    "smlad %[s3], %[c], %[w01], %[s3]\n\t"                                                                \
    "smlabt %[s3], %[a], %[w12], %[s3]\n\t"
    __asm__(TP_DSP_DW_ROW_S2("0") TP_DSP_DW_ROW_S2("8") TP_DSP_DW_ROW_S2("16")
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [x] "+r"(x), [a] "=&r"(a), [b] "=&r"(b),
              [c] "=&r"(c), [w01] "=&r"(w01), [w12] "=&r"(w12)
            : [w] "r"(w), [step] "r"(step)
            : "memory");
#undef TP_DSP_DW_ROW_S2
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
#else
    for (int32_t fy = 0; fy < 3; ++fy, x += row_step) {
        const int32_t w01 = w[2 * fy], w12 = w[2 * fy + 1];
        const int32_t a = tp_dsp_dw_read(x), b = tp_dsp_dw_read(x + 2);
        s[0] = tp_smlabt(b, w12, tp_smlad(a, w01, s[0]));
        const int32_t c = tp_dsp_dw_read(x + 4);
        s[1] = tp_smlabt(c, w12, tp_smlad(b, w01, s[1]));
        const int32_t d = tp_dsp_dw_read(x + 6);
        s[2] = tp_smlabt(d, w12, tp_smlad(c, w01, s[2]));
        const int32_t e = tp_dsp_dw_read(x + 8);
        s[3] = tp_smlabt(e, w12, tp_smlad(d, w01, s[3]));
    }
#endif
}

/* One output row of one channel, 3x3 filter: four outputs at a time, then two, then one. */
__attribute__((always_inline)) static inline void tp_dsp_dw_row3(const int16_t *x, int32_t row_step, const int32_t *w,
                                                                 tp_dsp_dw_channel ch, int32_t out_w, int8_t *out,
                                                                 int32_t out_step, int32_t stride, int mode)
{
    int32_t ox = 0;
    for (; ox + 4 <= out_w; ox += 4, x += 4 * stride, out += 4 * out_step) {
        int32_t s[4] = {ch.bias, ch.bias, ch.bias, ch.bias};
        if (stride == 1) {
            tp_dsp_dw_quad_stride1(x, row_step, w, s);
        } else {
            tp_dsp_dw_quad_stride2(x, row_step, w, s);
        }
        out[0] = tp_dsp_dw_output(s[0], ch, mode);
        out[out_step] = tp_dsp_dw_output(s[1], ch, mode);
        out[2 * out_step] = tp_dsp_dw_output(s[2], ch, mode);
        out[3 * out_step] = tp_dsp_dw_output(s[3], ch, mode);
    }
    if (ox + 2 <= out_w) { /* two outputs from words a, b (stride 1) or a, b, c (stride 2) */
        int32_t s0 = ch.bias, s1 = ch.bias;
        const int16_t *row = x;
#pragma GCC unroll 3
        for (int32_t fy = 0; fy < 3; ++fy, row += row_step) {
            const int32_t w01 = w[2 * fy], w12 = w[2 * fy + 1];
            const int32_t a = tp_dsp_dw_read(row), b = tp_dsp_dw_read(row + 2);
            s0 = tp_smlabt(b, w12, tp_smlad(a, w01, s0));
            if (stride == 1) {
                s1 = tp_smlad(b, w12, tp_smlatb(a, w01, s1));
            } else {
                s1 = tp_smlabt(tp_dsp_dw_read(row + 4), w12, tp_smlad(b, w01, s1));
            }
        }
        out[0] = tp_dsp_dw_output(s0, ch, mode);
        out[out_step] = tp_dsp_dw_output(s1, ch, mode);
        ox += 2;
        x += 2 * stride;
        out += 2 * out_step;
    }
    if (ox < out_w) {
        int32_t sum = ch.bias;
        const int16_t *row = x;
#pragma GCC unroll 3
        for (int32_t fy = 0; fy < 3; ++fy, row += row_step) {
            sum = tp_smlabt(tp_dsp_dw_read(row + 2), w[2 * fy + 1], tp_smlad(tp_dsp_dw_read(row), w[2 * fy], sum));
        }
        *out = tp_dsp_dw_output(sum, ch, mode);
    }
}

/* `rows` output rows of one channel (x_step apart in the plane), 3x3 filter: one copy of the row
 * loop per stride and requantization mode, so neither is tested per output. */
__attribute__((noinline)) static void tp_dsp_dw_rows3(const int16_t *x, int32_t x_step, int32_t row_step,
                                                      int32_t stride, const int32_t *w, tp_dsp_dw_channel ch,
                                                      int32_t rows, int32_t out_w, int8_t *out, int32_t out_step,
                                                      int32_t out_row_step)
{
    const int mode = ch.short_form == 0 ? TP_DSP_DW_GENERAL
                     : ch.lo == -128 && ch.hi == 127 ? TP_DSP_DW_SATURATE : TP_DSP_DW_CLAMP;
    for (; rows > 0; --rows, x += x_step, out += out_row_step) {
        if (stride == 1) {
            if (mode == TP_DSP_DW_SATURATE) {
                tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 1, TP_DSP_DW_SATURATE);
            } else if (mode == TP_DSP_DW_CLAMP) {
                tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 1, TP_DSP_DW_CLAMP);
            } else {
                tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 1, TP_DSP_DW_GENERAL);
            }
        } else if (mode == TP_DSP_DW_SATURATE) {
            tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 2, TP_DSP_DW_SATURATE);
        } else if (mode == TP_DSP_DW_CLAMP) {
            tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 2, TP_DSP_DW_CLAMP);
        } else {
            tp_dsp_dw_row3(x, row_step, w, ch, out_w, out, out_step, 2, TP_DSP_DW_GENERAL);
        }
    }
}

/* Any other filter, tap by tap: output i of filter row fy reads column i * stride + fx * dilation. */
static void tp_dsp_dw_rows(const int16_t *x, int32_t x_step, int32_t row_step, int32_t kh, int32_t kw,
                           int32_t stride, int32_t dilation, const int32_t *w, tp_dsp_dw_channel ch,
                           int32_t rows, int32_t out_w, int8_t *out, int32_t out_step, int32_t out_row_step)
{
    const int mode = ch.short_form == 0 ? TP_DSP_DW_GENERAL : TP_DSP_DW_CLAMP;
    for (; rows > 0; --rows, x += x_step, out += out_row_step) {
        for (int32_t ox = 0; ox < out_w; ++ox) {
            int32_t sum = ch.bias;
            for (int32_t fy = 0; fy < kh; ++fy) {
                for (int32_t fx = 0; fx < kw; ++fx) {
                    sum += x[fy * row_step + ox * stride + fx * dilation] * w[fy * kw + fx];
                }
            }
            out[ox * out_step] = tp_dsp_dw_output(sum, ch, mode);
        }
    }
}

/* One axis of the convolution as the planes see it: across plane rows or along lines. */
typedef struct {
    int32_t in, out, taps, stride, dilation, padding;
    int32_t in_pixels, out_pixels; /* pixels between neighbours along the axis, input and output */
} tp_dsp_dw_axis;

/* The kernel for depth multiplier m: a copy with m = 1 folded in for the common case. */
__attribute__((always_inline)) static inline void tp_dsp_dw_run(
    const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant, const tp_dims *input_dims,
    const int8_t *input, const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *channel_words,
    const tp_dims *output_dims, int8_t *output, const tp_dsp_dw_layout *layout, int8_t *scratch, int32_t m)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t channels = input_dims->c, out_channels = channels * m;
    const tp_dsp_dw_axis vertical = {input_dims->h, output_dims->h, filter_dims->h, conv->stride.h,
                                     conv->dilation.h, conv->padding.h, input_dims->w, output_dims->w};
    const tp_dsp_dw_axis horizontal = {input_dims->w, output_dims->w, filter_dims->w, conv->stride.w,
                                       conv->dilation.w, conv->padding.w, 1, 1};
    const tp_dsp_dw_axis across = layout->transposed ? horizontal : vertical;
    const tp_dsp_dw_axis along = layout->transposed ? vertical : horizontal;
    const int32_t line = layout->line, plane_step = layout->plane_rows * line;
    const int simd = tp_dsp_dw_simd(across.taps, along.taps, along.stride, along.dilation);
    int16_t *planes = (int16_t *)(void *)scratch;

    /* The padding columns stay zero; fewer than four input channels use as many planes. */
    memset(planes, 0, (size_t)(channels < 4 ? channels : 4) * (size_t)plane_step * sizeof(int16_t));
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        int8_t *out_image = output + b * output_dims->h * output_dims->w * out_channels;
        for (int32_t c0 = 0; c0 < channels; c0 += 4) {
            const int32_t n = channels - c0 < 4 ? channels - c0 : 4;
            int32_t base = 0, loaded = 0; /* padded rows [base, loaded) sit from plane row 0 on */
            for (int32_t o0 = 0; o0 < across.out; o0 += layout->band_rows) {
                const int32_t rows = across.out - o0 < layout->band_rows ? across.out - o0 : layout->band_rows;
                const int32_t first = o0 * across.stride;
                const int32_t end = first + (rows - 1) * across.stride + (across.taps - 1) * across.dilation + 1;
                if (end - base > layout->plane_rows) { /* slide: rows from `first` on move to the top */
                    const int32_t keep = loaded > first ? loaded - first : 0;
                    for (int32_t c = 0; c < n && keep > 0; ++c) {
                        memmove(planes + c * plane_step, planes + c * plane_step + (first - base) * line,
                                (size_t)(keep * line) * sizeof(int16_t));
                    }
                    base = first;
                    loaded = first + keep;
                }
                for (int32_t padded = loaded > first ? loaded : first; padded < end; ++padded) {
                    const int32_t row = padded - across.padding;
                    int16_t *dst = planes + (padded - base) * line;
                    if (row >= 0 && row < across.in) {
                        tp_dsp_dw_unpack_line(image + row * across.in_pixels * channels + c0, along.in,
                                              along.in_pixels * channels, n, conv->input_offset, dst + along.padding,
                                              plane_step);
                    } else {
                        for (int32_t c = 0; c < n; ++c) {
                            memset(dst + c * plane_step, 0, (size_t)line * sizeof(int16_t));
                        }
                    }
                }
                loaded = end;
                /* Output channels c * m .. c * m + m - 1 read plane c - c0: the next plane every m channels. */
                const int16_t *x = planes + (first - base) * line;
                for (int32_t channel = c0 * m, j = 1; channel < (c0 + n) * m; ++channel, ++j) {
                    const int32_t *words = channel_words + TP_DSP_CHANNEL_WORDS * channel;
                    const tp_dsp_dw_channel ch = {
                        words[0], words[1], words[2], words[3], quant->multiplier[channel], quant->shift[channel],
                        conv->output_offset, conv->activation.min, conv->activation.max,
                    };
                    const int32_t *w = packed_filter + channel * (simd ? 6 : across.taps * along.taps);
                    int8_t *out = out_image + o0 * across.out_pixels * out_channels + channel;
                    if (simd) {
                        tp_dsp_dw_rows3(x, across.stride * line, across.dilation * line, along.stride, w, ch, rows,
                                        along.out, out, along.out_pixels * out_channels,
                                        across.out_pixels * out_channels);
                    } else {
                        tp_dsp_dw_rows(x, across.stride * line, across.dilation * line, across.taps, along.taps,
                                       along.stride, along.dilation, w, ch, rows, along.out, out,
                                       along.out_pixels * out_channels, across.out_pixels * out_channels);
                    }
                    if (j == m) {
                        j = 0;
                        x += plane_step;
                    }
                }
            }
        }
    }
}

void tp_depthwise_conv2d_s8_dsp(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input,
                                const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *channel_words,
                                const tp_dims *output_dims, int8_t *output, const tp_dsp_dw_layout *layout,
                                int8_t *scratch)
{
    if (params->depth_multiplier == 1) {
        tp_dsp_dw_run(params, quant, input_dims, input, filter_dims, packed_filter, channel_words, output_dims, output,
                      layout, scratch, 1);
    } else {
        tp_dsp_dw_run(params, quant, input_dims, input, filter_dims, packed_filter, channel_words, output_dims, output,
                      layout, scratch, params->depth_multiplier);
    }
}
