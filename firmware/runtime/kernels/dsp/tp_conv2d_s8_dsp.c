/* CONV_2D for the DSP extension: im2col two output pixels at a time, widened to int16, then
 * the 2x2-blocked matrix kernel over all output channels. A 1x1, stride-1, unpadded
 * convolution (the pointwise layers of depthwise-separable networks) needs no im2col:
 * adjacent output pixels are adjacent input pixels, so the widening reads the input. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"

static void tp_dsp_fill(int8_t *dst, int8_t value, int32_t n)
{
    const int32_t word = (int32_t)(0x01010101u * (uint8_t)value);
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &word, 4);
    }
    for (; n > 0; --n) {
        *dst++ = value;
    }
}

static void tp_dsp_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const int32_t word = tp_read_s8x4(src);
        memcpy(dst, &word, 4);
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

/* The n int8 values at src in tp_dsp.h's widened column: per group of four, (x0, x2) and
 * (x1, x3) as int16 pairs (the other column's two words follow each group); the last group's
 * values past n are zeros. */
static inline __attribute__((always_inline)) void tp_dsp_widen(const int8_t *src, int32_t n, int32_t *col)
{
    for (const int8_t *const end = src + (n & ~3); src != end; src += 4, col += 4) {
        const int32_t x = tp_read_s8x4(src);
        col[0] = tp_sxtb16(x);
        col[1] = tp_sxtb16_ror8(x);
    }
    if (n & 3) {
        uint32_t x = 0;
        for (int32_t i = 0; i < (n & 3); ++i) {
            x |= (uint32_t)(uint8_t)src[i] << (8 * i);
        }
        col[0] = tp_sxtb16((int32_t)x);
        col[1] = tp_sxtb16_ror8((int32_t)x);
    }
}

/* The same for whole groups read from a gather buffer (round4(n) bytes long): the last group's
 * values past n are whatever the buffer holds, which the filter's zero padding multiplies away. */
static inline __attribute__((always_inline)) void tp_dsp_widen_groups(const int8_t *src, int32_t groups, int32_t *col)
{
    for (; groups > 0; --groups, src += 4, col += 4) {
        const int32_t x = tp_read_s8x4(src);
        col[0] = tp_sxtb16(x);
        col[1] = tp_sxtb16_ror8(x);
    }
}

/* The widened column of output pixel (oy, ox): kh * kw * in_c input values in filter order.
 * Taps in the padding get pad, the input zero point, which the effective bias turns into
 * zero. When a filter row's kw * in_c values fill whole groups, each row is widened on its
 * own, from the image or, with taps in the padding, gathered into `row` first; otherwise the
 * whole column is gathered into `row` (kh * kw * in_c bytes) and widened at once. */
static void tp_dsp_im2col(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *image,
                          const tp_dims *filter_dims, int32_t oy, int32_t ox, int8_t pad, int8_t *row, int32_t *col)
{
    const int32_t channels = input_dims->c, kw = filter_dims->w, n = kw * channels;
    const int by_rows = n % 4 == 0;
    const int32_t y0 = oy * params->stride.h - params->padding.h;
    const int32_t x0 = ox * params->stride.w - params->padding.w;
    const int32_t row_step = params->dilation.h * input_dims->w * channels;
    if (params->dilation.w == 1 && x0 >= 0 && x0 + kw <= input_dims->w && y0 >= 0 &&
        y0 + (filter_dims->h - 1) * params->dilation.h < input_dims->h) {
        /* Every tap inside (most pixels): each filter row is one run of the image, no padding tests. */
        const int8_t *src = image + (y0 * input_dims->w + x0) * channels;
        if (by_rows) {
            for (int32_t fy = 0; fy < filter_dims->h; ++fy, src += row_step, col += n) {
                tp_dsp_widen_groups(src, n / 4, col);
            }
        } else {
            int8_t *dst = row;
            for (int32_t fy = 0; fy < filter_dims->h; ++fy, src += row_step, dst += n) {
                tp_dsp_copy(dst, src, n);
            }
            tp_dsp_widen_groups(row, (filter_dims->h * n + 3) / 4, col);
        }
        return;
    }
    const int32_t fx_begin = tp_conv_tap_begin(x0, params->dilation.w);
    const int32_t fx_end = TP_MAX(fx_begin, tp_conv_tap_end(x0, params->dilation.w, input_dims->w, kw));
    /* No tap left or right of the image: a filter row inside is one contiguous run. */
    const int whole = params->dilation.w == 1 && fx_begin == 0 && fx_end == kw;
    for (int32_t fy = 0, y = y0; fy < filter_dims->h; ++fy, y += params->dilation.h) {
        int8_t *const dst = by_rows ? row : row + fy * n;
        const int8_t *src = dst;
        if (y < 0 || y >= input_dims->h) {
            tp_dsp_fill(dst, pad, n);
        } else if (whole) {
            src = image + (y * input_dims->w + x0) * channels;
            if (!by_rows) {
                tp_dsp_copy(dst, src, n);
            }
        } else {
            const int8_t *line = image + y * input_dims->w * channels;
            tp_dsp_fill(dst, pad, fx_begin * channels);
            if (params->dilation.w == 1) {
                tp_dsp_copy(dst + fx_begin * channels, line + (x0 + fx_begin) * channels,
                            (fx_end - fx_begin) * channels);
            } else {
                for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                    tp_dsp_copy(dst + fx * channels, line + (x0 + fx * params->dilation.w) * channels, channels);
                }
            }
            tp_dsp_fill(dst + fx_end * channels, pad, (kw - fx_end) * channels);
        }
        if (by_rows) {
            tp_dsp_widen_groups(src, n / 4, col + fy * n);
        }
    }
    if (!by_rows) {
        tp_dsp_widen_groups(row, (filter_dims->h * n + 3) / 4, col);
    }
}

void tp_conv2d_s8_dsp(const tp_conv_params *params, const tp_per_channel_requant *quant,
                      const tp_dims *input_dims, const int8_t *input,
                      const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *words,
                      const tp_dims *output_dims, int8_t *output, int8_t *scratch)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c, groups = (k + 3) / 4;
    const int32_t out_w = output_dims->w, out_c = output_dims->c;
    const int32_t pixels = output_dims->h * out_w;
    const int in_place = filter_dims->h == 1 && filter_dims->w == 1 && params->stride.h == 1 &&
                         params->stride.w == 1 && params->padding.h == 0 && params->padding.w == 0;
    const int8_t pad = (int8_t)(-params->input_offset);
    const tp_dsp_output_stage stage = {words, quant->multiplier, quant->shift, params->output_offset,
                                       params->activation};
    int32_t *const cols = (int32_t *)(void *)scratch;
    int8_t *const row = scratch + 16 * groups;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output + b * pixels * out_c;
        int32_t oy = 0, ox = 0; /* of pixel p */
        for (int32_t p = 0; p < pixels; p += 2) {
            /* A last pixel of an odd count fills both columns and writes its outputs twice. */
            const int32_t last = pixels - p >= 2 ? p + 1 : p;
            const int32_t next_y = ox + 1 < out_w ? oy : oy + 1, next_x = ox + 1 < out_w ? ox + 1 : 0;
            for (int32_t i = 0; i < 2; ++i) {
                const int32_t q = i == 0 ? p : last;
                if (in_place) {
                    tp_dsp_widen(image + q * k, k, cols + 2 * i);
                } else {
                    tp_dsp_im2col(params, input_dims, image, filter_dims, q == p ? oy : next_y,
                                  q == p ? ox : next_x, pad, row, cols + 2 * i);
                }
            }
            tp_dsp_gemm_s8(cols, groups, packed_filter, out_c, &stage, out + p * out_c, out + last * out_c);
            oy = next_x + 1 < out_w ? next_y : next_y + 1;
            ox = next_x + 1 < out_w ? next_x + 1 : 0;
        }
    }
}
