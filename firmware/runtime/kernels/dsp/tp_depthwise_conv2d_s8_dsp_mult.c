/* DEPTHWISE_CONV_2D with a depth multiplier above 1, for the DSP extension.
 *
 * Output channels ic * m .. ic * m + m - 1 all read input channel ic alone, and they sit next to
 * each other in every output pixel: per input channel the layer is a regular convolution of a
 * one-channel image by m filters of kh * kw taps. So, two output pixels at a time and one input
 * channel at a time, the kh * kw taps of that channel under each pixel's window are gathered
 * (the input zero point in the padding) and widened into two columns, and the matrix kernel of
 * tp_conv2d_s8_dsp (tp_dsp_gemm_s8: SMLAD, pairs of filters by pairs of pixels) multiplies them by
 * that channel's m filters, writing m outputs per pixel. The generator packs each input
 * channel's filters on their own (m rounded up to even rows) with their own output words, so the
 * matrix kernel sees one small convolution per input channel. The input offset is folded into
 * the bias, as for CONV_2D: padding taps hold the zero point, x + input_offset = 0.
 */
#include <string.h>

#include "tp_dsp.h"
#include "tp_dsp_simd.h"
#include "tp_fixedpoint.h"

/* What the column gathering needs of one call, worked out once. */
typedef struct {
    const int8_t *image;
    int32_t height, width, channels;
    int32_t kh, kw, groups;
    int32_t dilation_h, dilation_w;
    int32_t y_last, x_last; /* the last window origins with every tap inside (negative: none) */
    int32_t pad_word;       /* the input zero point in all four bytes */
    int32_t by_rows;        /* one channel, no dilation along rows, rows of whole groups */
    int8_t *taps;           /* gather buffer: 4 * groups + 4 bytes */
} tp_dsp_dwm_window;

/* n bytes of the pad value from dst on, written as whole words: up to 3 bytes past dst + n.
 * Callers write their buffer in increasing order, so whatever lands past a run is overwritten
 * by the next run, or falls past the last tap, where the filter's zero padding multiplies it
 * away. (Words rather than a byte loop, which GCC turns into a memset call.) */
static inline void tp_dsp_dwm_fill(int8_t *dst, int32_t word, int32_t n)
{
    for (; n > 0; n -= 4, dst += 4) {
        memcpy(dst, &word, sizeof word);
    }
}

/* n bytes from src to dst, words then bytes: exactly n bytes read and written. */
static inline void tp_dsp_dwm_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const int32_t word = tp_read_s8x4(src);
        memcpy(dst, &word, sizeof word);
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

/* One group of four int8 values at src in tp_dsp.h's widened column: the words (x0, x2) and
 * (x1, x3) into col[0] and col[1] (the other column's two words follow them). */
static inline __attribute__((always_inline)) void tp_dsp_dwm_widen_group(const int8_t *src, int32_t *col)
{
    const int32_t x = tp_read_s8x4(src);
    col[0] = tp_sxtb16(x);
    col[1] = tp_sxtb16_ror8(x);
}

/* rows filter rows of row_groups groups each, line_step bytes apart from src on, widened; rows
 * of one and two groups (10x4 and 10x8 filters) without an inner loop. */
static __attribute__((noinline)) void tp_dsp_dwm_widen_rows(const int8_t *src, int32_t rows, int32_t row_groups,
                                                            int32_t line_step, int32_t *col)
{
    if (row_groups == 2) {
        for (; rows > 0; --rows, src += line_step, col += 8) {
            tp_dsp_dwm_widen_group(src, col);
            tp_dsp_dwm_widen_group(src + 4, col + 4);
        }
    } else if (row_groups == 1) {
        for (; rows > 0; --rows, src += line_step, col += 4) {
            tp_dsp_dwm_widen_group(src, col);
        }
    } else {
        for (; rows > 0; --rows, src += line_step) {
            for (int32_t g = 0; g < row_groups; ++g, col += 4) {
                tp_dsp_dwm_widen_group(src + 4 * g, col);
            }
        }
    }
}

/* The taps of the window at (y0, x0) for input channel `channel`, row by row into w->taps, the
 * input zero point where a tap falls into the padding, then widened into col. */
static __attribute__((noinline)) void tp_dsp_dwm_gather(const tp_dsp_dwm_window *w, int32_t y0, int32_t x0,
                                                        int32_t channel, int32_t *col)
{
    const int32_t kw = w->kw, dx = w->dilation_w, channels = w->channels;
    const int32_t line_step = w->dilation_h * w->width * channels, step = dx * channels;
    int8_t *dst = w->taps;
    if (x0 >= 0 && x0 <= w->x_last && y0 >= 0 && y0 <= w->y_last) { /* every tap inside */
        const int8_t *src = w->image + (y0 * w->width + x0) * channels + channel;
        for (int32_t fy = 0; fy < w->kh; ++fy, src += line_step, dst += kw) {
            if (step == 1) {
                tp_dsp_dwm_copy(dst, src, kw);
            } else {
                const int8_t *tap = src;
                for (int32_t fx = 0; fx < kw; ++fx, tap += step) {
                    dst[fx] = *tap;
                }
            }
        }
        tp_dsp_dwm_widen_rows(w->taps, 1, w->groups, 0, col);
        return;
    }
    const int32_t fx_begin = TP_MIN(kw, tp_conv_tap_begin(x0, dx));
    const int32_t fx_end = TP_MAX(fx_begin, tp_conv_tap_end(x0, dx, w->width, kw));
    const int32_t inside = fx_end - fx_begin;
    /* Byte offset of the first tap inside of filter row 0 (its line may lie outside the image). */
    int32_t at = (y0 * w->width + x0 + fx_begin * dx) * channels + channel;
    for (int32_t fy = 0, y = y0; fy < w->kh; ++fy, y += w->dilation_h, at += line_step, dst += kw) {
        if (y < 0 || y >= w->height) {
            tp_dsp_dwm_fill(dst, w->pad_word, kw);
            continue;
        }
        tp_dsp_dwm_fill(dst, w->pad_word, fx_begin);
        if (inside > 0 && step == 1) {
            tp_dsp_dwm_copy(dst + fx_begin, w->image + at, inside);
        } else if (inside > 0) {
            const int8_t *src = w->image + at;
            for (int32_t fx = fx_begin; fx < fx_end; ++fx, src += step) {
                dst[fx] = *src;
            }
        }
        tp_dsp_dwm_fill(dst + fx_end, w->pad_word, kw - fx_end);
    }
    tp_dsp_dwm_widen_rows(w->taps, 1, w->groups, 0, col);
}

/* The column of the window at (y0, x0) for input channel `channel`: its kh * kw taps in filter
 * order (row by row), widened into col, the input zero point where a tap falls into the padding.
 * With one input channel, no dilation along rows and rows of whole groups (KWS's and
 * micro_speech's 10x8 filters), filter rows inside the image are widened straight from it, and
 * rows above or below it are the widened zero point. Any other window is gathered into w->taps
 * first. */
static inline __attribute__((always_inline)) void tp_dsp_dwm_column(const tp_dsp_dwm_window *w, int32_t y0,
                                                                    int32_t x0, int32_t channel, int32_t *col)
{
    if (w->by_rows && x0 >= 0 && x0 <= w->x_last) {
        const int32_t line_step = w->dilation_h * w->width, row_groups = w->kw / 4;
        if (y0 >= 0 && y0 <= w->y_last) {
            tp_dsp_dwm_widen_rows(w->image + y0 * w->width + x0, w->kh, row_groups, line_step, col);
            return;
        }
        const int32_t pad = tp_sxtb16(w->pad_word);
        for (int32_t fy = 0, y = y0; fy < w->kh; ++fy, y += w->dilation_h, col += w->kw) {
            if (y >= 0 && y < w->height) {
                tp_dsp_dwm_widen_rows(w->image + y * w->width + x0, 1, row_groups, 0, col);
            } else {
                for (int32_t g = 0; g < row_groups; ++g) {
                    col[4 * g] = pad;
                    col[4 * g + 1] = pad;
                }
            }
        }
        return;
    }
    tp_dsp_dwm_gather(w, y0, x0, channel, col);
}

void tp_depthwise_conv2d_s8_dsp_mult(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                     const tp_dims *input_dims, const int8_t *input,
                                     const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *words,
                                     const tp_dims *output_dims, int8_t *output, int8_t *scratch)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t m = params->depth_multiplier, in_c = input_dims->c, out_c = output_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, groups = (kh * kw + 3) / 4;
    const int32_t out_w = output_dims->w, pixels = output_dims->h * out_w;
    /* Per input channel: m filters rounded up to a pair, and their output words. */
    const int32_t filter_words = (m + (m & 1)) * groups, pair_words = TP_DSP_PAIR_WORDS * ((m + 1) / 2);
    int32_t *const cols = (int32_t *)(void *)scratch;
    tp_dsp_dwm_window window = {
        input, input_dims->h, input_dims->w, in_c, kh, kw, groups,
        conv->dilation.h, conv->dilation.w,
        input_dims->h - 1 - (kh - 1) * conv->dilation.h, input_dims->w - 1 - (kw - 1) * conv->dilation.w,
        (int32_t)(0x01010101u * (uint8_t)(-conv->input_offset)), in_c == 1 && conv->dilation.w == 1 && kw % 4 == 0,
        scratch + 16 * groups,
    };
    tp_dsp_output_stage stage = {words, quant->multiplier, quant->shift, conv->output_offset, conv->activation};

    for (int32_t b = 0; b < input_dims->n; ++b) {
        window.image = input + b * input_dims->h * input_dims->w * in_c;
        int8_t *out = output + b * pixels * out_c;
        int32_t oy = 0, ox = 0; /* of pixel p */
        for (int32_t p = 0; p < pixels; p += 2) {
            /* A last pixel of an odd count fills both columns and writes its outputs twice. */
            const int32_t last = pixels - p >= 2 ? p + 1 : p;
            const int32_t next_y = ox + 1 < out_w ? oy : oy + 1, next_x = ox + 1 < out_w ? ox + 1 : 0;
            const int32_t last_y = last == p ? oy : next_y, last_x = last == p ? ox : next_x;
            const int32_t y0 = oy * conv->stride.h - conv->padding.h, x0 = ox * conv->stride.w - conv->padding.w;
            for (int32_t ic = 0; ic < in_c; ++ic) {
                tp_dsp_dwm_column(&window, y0, x0, ic, cols);
                tp_dsp_dwm_column(&window, last_y * conv->stride.h - conv->padding.h,
                                  last_x * conv->stride.w - conv->padding.w, ic, cols + 2);
                stage.words = words + ic * pair_words;
                stage.multiplier = quant->multiplier + ic * m;
                stage.shift = quant->shift + ic * m;
                tp_dsp_gemm_s8(cols, groups, packed_filter + ic * filter_words, m, &stage, out + p * out_c + ic * m,
                               out + last * out_c + ic * m);
            }
            oy = next_x + 1 < out_w ? next_y : next_y + 1;
            ox = next_x + 1 < out_w ? next_x + 1 : 0;
        }
    }
}
