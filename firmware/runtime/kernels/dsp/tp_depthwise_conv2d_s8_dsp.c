/* DEPTHWISE_CONV_2D (depth multiplier 1) for the DSP extension, one channel at a time over int16 planes.
 *
 * Per group of four channels, the input rows a band of output rows reads are unpacked into one
 * plane per channel: int16 with the input offset already added, and zero in the padding (rows
 * and columns), so every output sums all kh * kw taps without a test. Rows the next band also
 * reads move up the plane instead of being unpacked again, so each input row is read once per
 * channel group; that is what lets the kernel run over its own input (output == input) where
 * the generator proved no row is overwritten before it is read (lowering/conv.py).
 * Then, per channel, each filter row adds its taps to a band of int32 accumulators: three-tap
 * rows at stride 1 four outputs per step (eight multiplies for twelve products, the row's words
 * sliding through registers), at stride 2 two outputs per step, any other row tap by tap.
 * Last the band is requantized as in the other DSP kernels (tp_dsp.h).
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

/* Packed filter words per filter row: the (w0, w1), (w1, w2) pairs of a three-tap row the
 * SIMD paths read, else one word per tap. lowering/conv.py packs by the same rule. */
static int32_t tp_dsp_dw_row_words(int32_t kw, int32_t stride_w, int32_t dilation_w)
{
    return kw == 3 && dilation_w == 1 && (stride_w == 1 || stride_w == 2) ? 2 : kw;
}

/* Input row `row` of n channels (pixel 0, first channel at src) into the planes at dst (column
 * 0 of the data, planes plane_step apart): dst[c][x] = src[x][c] + offset. */
static void tp_dsp_dw_unpack_row(const int8_t *src, int32_t width, int32_t channels, int32_t n, int32_t offset,
                                 int16_t *dst, int32_t plane_step)
{
    if (n < 4) {
        for (int32_t c = 0; c < n; ++c) {
            for (int32_t x = 0; x < width; ++x) {
                dst[c * plane_step + x] = (int16_t)(src[x * channels + c] + offset);
            }
        }
        return;
    }
    const int32_t offset_pair = (int32_t)(((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16));
    int16_t *d0 = dst, *d1 = dst + plane_step, *d2 = dst + 2 * plane_step, *d3 = dst + 3 * plane_step;
    int32_t x = 0;
    for (; x + 1 < width; x += 2, src += 2 * channels) {
        const int32_t p = tp_read_s8x4(src), q = tp_read_s8x4(src + channels);
        const int32_t even_p = tp_sxtab16(offset_pair, p), odd_p = tp_sxtab16_ror8(offset_pair, p);
        const int32_t even_q = tp_sxtab16(offset_pair, q), odd_q = tp_sxtab16_ror8(offset_pair, q);
        tp_dsp_dw_write(d0 + x, tp_pkhbt16(even_p, even_q));
        tp_dsp_dw_write(d1 + x, tp_pkhbt16(odd_p, odd_q));
        tp_dsp_dw_write(d2 + x, tp_pkhtb16(even_q, even_p));
        tp_dsp_dw_write(d3 + x, tp_pkhtb16(odd_q, odd_p));
    }
    if (x < width) {
        d0[x] = (int16_t)(src[0] + offset);
        d1[x] = (int16_t)(src[1] + offset);
        d2[x] = (int16_t)(src[2] + offset);
        d3[x] = (int16_t)(src[3] + offset);
    }
}

/* acc[r][i] += x[r][i + 0..2] . (w0, w1, w2) for `rows` rows of acc_w outputs (a multiple of 4);
 * w holds (w0, w1), (w1, w2). Four outputs read six columns: words a, b, c, and c is the next a. */
static void tp_dsp_dw_taps3_stride1(const int16_t *x, int32_t x_step, const int32_t *w, int32_t *acc, int32_t acc_w,
                                    int32_t rows)
{
    const int32_t w01 = w[0], w12 = w[1];
    for (; rows > 0; --rows, x += x_step) {
        const int16_t *p = x + 2;
        int32_t a = tp_dsp_dw_read(x);
        for (int32_t *end = acc + acc_w; acc < end; acc += 4, p += 4) {
            const int32_t b = tp_dsp_dw_read(p), c = tp_dsp_dw_read(p + 2);
            int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
            s0 = tp_smlabt(b, w12, tp_smlad(a, w01, s0));
            s1 = tp_smlad(b, w12, tp_smlatb(a, w01, s1));
            s2 = tp_smlabt(c, w12, tp_smlad(b, w01, s2));
            s3 = tp_smlad(c, w12, tp_smlatb(b, w01, s3));
            acc[0] = s0;
            acc[1] = s1;
            acc[2] = s2;
            acc[3] = s3;
            a = c;
        }
    }
}

/* The same at stride 2: output i reads columns 2i..2i+2, two outputs per step (words a, b, c). */
static void tp_dsp_dw_taps3_stride2(const int16_t *x, int32_t x_step, const int32_t *w, int32_t *acc, int32_t acc_w,
                                    int32_t rows)
{
    const int32_t w01 = w[0], w12 = w[1];
    for (; rows > 0; --rows, x += x_step) {
        const int16_t *p = x + 2;
        int32_t a = tp_dsp_dw_read(x);
        for (int32_t *end = acc + acc_w; acc < end; acc += 2, p += 4) {
            const int32_t b = tp_dsp_dw_read(p), c = tp_dsp_dw_read(p + 2);
            acc[0] = tp_smlabt(b, w12, tp_smlad(a, w01, acc[0]));
            acc[1] = tp_smlabt(c, w12, tp_smlad(b, w01, acc[1]));
            a = c;
        }
    }
}

/* Any filter row: output i reads columns i * stride + fx * dilation, fx < kw. */
static void tp_dsp_dw_taps(const int16_t *x, int32_t x_step, const int32_t *w, int32_t kw, int32_t stride,
                           int32_t dilation, int32_t *acc, int32_t acc_w, int32_t rows)
{
    for (; rows > 0; --rows, x += x_step, acc += acc_w) {
        for (int32_t i = 0; i < acc_w; ++i) {
            int32_t sum = acc[i];
            for (int32_t fx = 0; fx < kw; ++fx) {
                sum += x[i * stride + fx * dilation] * w[fx];
            }
            acc[i] = sum;
        }
    }
}

/* One channel's band of accumulators (rows of acc_w, the first out_w used) to int8 outputs
 * `channels` apart; words, multiplier and shift are the channel's (tp_dsp.h). */
static void tp_dsp_dw_requantize_band(const int32_t *acc, int32_t acc_w, int32_t rows, int32_t out_w,
                                      const int32_t *words, int32_t multiplier, int32_t shift,
                                      const tp_conv_params *conv, int8_t *out, int32_t channels)
{
    const int32_t lo = conv->activation.min, hi = conv->activation.max;
    if (words[1] != 0) {
        const int32_t left = words[1], right = words[2], rounding = words[3];
        for (; rows > 0; --rows, acc += acc_w) {
            for (int32_t i = 0; i < out_w; ++i, out += channels) {
                const int32_t high = tp_smmulr((int32_t)((uint32_t)acc[i] << left), multiplier);
                *out = (int8_t)tp_clamp((high + (high >> 31) + rounding) >> right, lo, hi);
            }
        }
        return;
    }
    for (; rows > 0; --rows, acc += acc_w) {
        for (int32_t i = 0; i < out_w; ++i, out += channels) {
            const int32_t value = tp_dsp_requantize(acc[i], multiplier, shift) + conv->output_offset;
            *out = (int8_t)tp_clamp(value, lo, hi);
        }
    }
}

void tp_depthwise_conv2d_s8_dsp(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input,
                                const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *channel_words,
                                const tp_dims *output_dims, int8_t *output, const tp_dsp_dw_layout *layout,
                                int8_t *scratch)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t channels = input_dims->c, height = input_dims->h, width = input_dims->w;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, acc_w = (out_w + 3) & ~3;
    const int32_t line = layout->line, plane_step = layout->plane_rows * line;
    const int32_t row_words = tp_dsp_dw_row_words(kw, conv->stride.w, conv->dilation.w);
    int16_t *planes = (int16_t *)(void *)scratch;
    int32_t *acc = (int32_t *)(void *)(scratch + 4 * plane_step * (int32_t)sizeof(int16_t));

    memset(planes, 0, 4 * (size_t)plane_step * sizeof(int16_t)); /* the padding columns stay zero */
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * height * width * channels;
        int8_t *out_image = output + b * out_h * out_w * channels;
        for (int32_t c0 = 0; c0 < channels; c0 += 4) {
            const int32_t n = channels - c0 < 4 ? channels - c0 : 4;
            int32_t base = 0, loaded = 0; /* padded rows [base, loaded) sit from plane row 0 on */
            for (int32_t oy0 = 0; oy0 < out_h; oy0 += layout->band_rows) {
                const int32_t rows = out_h - oy0 < layout->band_rows ? out_h - oy0 : layout->band_rows;
                const int32_t first = oy0 * conv->stride.h;
                const int32_t end = first + (rows - 1) * conv->stride.h + (kh - 1) * conv->dilation.h + 1;
                if (end - base > layout->plane_rows) { /* slide: rows from `first` on move to the top */
                    const int32_t keep = loaded > first ? loaded - first : 0;
                    for (int32_t c = 0; c < n && keep > 0; ++c) {
                        memmove(planes + c * plane_step, planes + c * plane_step + (first - base) * line,
                                (size_t)(keep * line) * sizeof(int16_t));
                    }
                    base = first;
                    loaded = first + keep;
                }
                for (int32_t py = loaded > first ? loaded : first; py < end; ++py) {
                    const int32_t y = py - conv->padding.h;
                    int16_t *dst = planes + (py - base) * line;
                    if (y >= 0 && y < height) {
                        tp_dsp_dw_unpack_row(image + y * width * channels + c0, width, channels, n,
                                             conv->input_offset, dst + conv->padding.w, plane_step);
                    } else {
                        for (int32_t c = 0; c < n; ++c) {
                            memset(dst + c * plane_step, 0, (size_t)line * sizeof(int16_t));
                        }
                    }
                }
                loaded = end;
                for (int32_t c = 0; c < n; ++c) {
                    const int32_t channel = c0 + c;
                    const int32_t *words = channel_words + TP_DSP_CHANNEL_WORDS * channel;
                    const int32_t *w = packed_filter + channel * kh * row_words;
                    const int16_t *x = planes + c * plane_step + (first - base) * line;
                    const int32_t x_step = conv->stride.h * line;
                    for (int32_t i = 0; i < rows * acc_w; ++i) {
                        acc[i] = words[0];
                    }
                    for (int32_t fy = 0; fy < kh; ++fy, w += row_words, x += conv->dilation.h * line) {
                        if (row_words == kw) {
                            tp_dsp_dw_taps(x, x_step, w, kw, conv->stride.w, conv->dilation.w, acc, acc_w, rows);
                        } else if (conv->stride.w == 1) {
                            tp_dsp_dw_taps3_stride1(x, x_step, w, acc, acc_w, rows);
                        } else {
                            tp_dsp_dw_taps3_stride2(x, x_step, w, acc, acc_w, rows);
                        }
                    }
                    tp_dsp_dw_requantize_band(acc, acc_w, rows, out_w, words, quant->multiplier[channel],
                                              quant->shift[channel], conv, out_image + oy0 * out_w * channels + channel,
                                              channels);
                }
            }
        }
    }
}
