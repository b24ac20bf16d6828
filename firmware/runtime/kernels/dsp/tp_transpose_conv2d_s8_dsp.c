/* TRANSPOSE_CONV for the DSP extension: phase by phase (tp_dsp_transpose_conv.h), the output
 * pixels of a phase two at a time, their columns gathered and widened to int16, then the
 * 2x2-blocked matrix kernel over all output channels. */
#include "tp_dsp_transpose_conv.h"

#include "tp_dsp_simd.h"

static void tp_tconv_fill(int8_t *dst, int8_t value, int32_t n)
{
    const int32_t word = (int32_t)(0x01010101u * (uint8_t)value);
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &word, 4);
    }
    for (; n > 0; --n) {
        *dst++ = value;
    }
}

static void tp_tconv_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const int32_t word = tp_read_s8x4(src);
        memcpy(dst, &word, 4);
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

/* Whole groups of four values from src in tp_dsp.h's widened column: (x0, x2) and (x1, x3) as
 * int16 pairs, the other column's two words after each group. Values past the column's end in
 * the last group meet the packed filter's zero padding. */
static inline __attribute__((always_inline)) void tp_tconv_widen(const int8_t *src, int32_t groups, int32_t *col)
{
    for (; groups > 0; --groups, src += 4, col += 4) {
        const int32_t x = tp_read_s8x4(src);
        col[0] = tp_sxtb16(x);
        col[1] = tp_sxtb16_ror8(x);
    }
}

/* The widened column of a phase's output pixel whose window starts at input (y0, x0) and spans
 * taps_h x taps_w pixels: inside pixels in order, outside ones the input zero point `pad`. */
static void tp_tconv_column(const tp_dims *input_dims, const int8_t *image, int32_t y0, int32_t x0, int32_t taps_h,
                            int32_t taps_w, int8_t pad, int8_t *gather, int32_t *col)
{
    const int32_t channels = input_dims->c, n = taps_w * channels;
    const int32_t line = input_dims->w * channels;
    if (y0 >= 0 && y0 + taps_h <= input_dims->h && x0 >= 0 && x0 + taps_w <= input_dims->w) {
        const int8_t *src = image + y0 * line + x0 * channels;
        if (n % 4 == 0) { /* each window row is one run of the image filling whole groups */
            for (int32_t j = 0; j < taps_h; ++j, src += line, col += n) {
                tp_tconv_widen(src, n / 4, col);
            }
            return;
        }
        for (int32_t j = 0; j < taps_h; ++j, src += line) {
            tp_tconv_copy(gather + j * n, src, n);
        }
    } else {
        const int32_t first = x0 < 0 ? -x0 : 0;
        int32_t end = input_dims->w - x0;
        end = end < taps_w ? end : taps_w;
        end = end > first ? end : first;
        for (int32_t j = 0, y = y0; j < taps_h; ++j, ++y) {
            int8_t *const dst = gather + j * n;
            if (y < 0 || y >= input_dims->h) {
                tp_tconv_fill(dst, pad, n);
                continue;
            }
            tp_tconv_fill(dst, pad, first * channels);
            tp_tconv_copy(dst + first * channels, image + y * line + (x0 + first) * channels, (end - first) * channels);
            tp_tconv_fill(dst + end * channels, pad, (taps_w - end) * channels);
        }
    }
    tp_tconv_widen(gather, (taps_h * n + 3) / 4, col);
}

/* The first output coordinate of phase r along an axis: (coordinate + padding) mod stride = r. */
static inline int32_t tp_tconv_phase_first(int32_t r, int32_t stride, int32_t padding)
{
    return ((r - padding) % stride + stride) % stride;
}

void tp_transpose_conv2d_s8_dsp(const tp_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input, const tp_dims *filter_dims,
                                const int32_t *packed_filter, const int32_t *words, const tp_dims *output_dims,
                                int8_t *output, int8_t *scratch)
{
    const int32_t sh = params->stride.h, sw = params->stride.w, out_c = output_dims->c;
    const int32_t pairs = (out_c + 1) / 2;
    const int8_t pad = (int8_t)(-params->input_offset);
    int32_t most = 1; /* the largest phase's groups: the gather buffer follows the columns */
    for (int32_t ry = 0; ry < sh; ++ry) {
        for (int32_t rx = 0; rx < sw; ++rx) {
            const int32_t k = tp_transpose_conv_phase_taps(filter_dims->h, sh, ry) *
                              tp_transpose_conv_phase_taps(filter_dims->w, sw, rx) * input_dims->c;
            most = TP_MAX(most, (k + 3) / 4);
        }
    }
    int32_t *const cols = (int32_t *)(void *)scratch;
    int8_t *const gather = scratch + 16 * most;

    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output + b * output_dims->h * output_dims->w * out_c;
        const int32_t *filter = packed_filter;
        tp_dsp_output_stage stage = {words, quant->multiplier, quant->shift, params->output_offset,
                                     params->activation};
        for (int32_t ry = 0; ry < sh; ++ry) {
            const int32_t taps_h = tp_transpose_conv_phase_taps(filter_dims->h, sh, ry);
            const int32_t y_first = tp_tconv_phase_first(ry, sh, params->padding.h);
            const int32_t rows = y_first < output_dims->h ? (output_dims->h - y_first + sh - 1) / sh : 0;
            for (int32_t rx = 0; rx < sw; ++rx) {
                const int32_t taps_w = tp_transpose_conv_phase_taps(filter_dims->w, sw, rx);
                const int32_t x_first = tp_tconv_phase_first(rx, sw, params->padding.w);
                const int32_t columns = x_first < output_dims->w ? (output_dims->w - x_first + sw - 1) / sw : 0;
                const int32_t k = taps_h * taps_w * input_dims->c;
                const int32_t groups = k > 0 ? (k + 3) / 4 : 1;
                const int32_t pixels = rows * columns;
                if (k == 0) { /* no tap reaches this phase: the bias alone, against a zero filter */
                    cols[0] = cols[1] = cols[2] = cols[3] = 0;
                }
                for (int32_t p = 0; p < pixels; p += 2) {
                    int8_t *dst[2];
                    for (int32_t c = 0; c < 2; ++c) {
                        /* A last pixel of an odd count fills both columns and writes its outputs twice. */
                        const int32_t q = p + c < pixels ? p + c : p;
                        const int32_t y = y_first + (q / columns) * sh, x = x_first + (q % columns) * sw;
                        dst[c] = out + (y * output_dims->w + x) * out_c;
                        if (k > 0) {
                            const int32_t y0 = (y + params->padding.h) / sh - (taps_h - 1);
                            const int32_t x0 = (x + params->padding.w) / sw - (taps_w - 1);
                            tp_tconv_column(input_dims, image, y0, x0, taps_h, taps_w, pad, gather, cols + 2 * c);
                        }
                    }
                    tp_dsp_gemm_s8(cols, groups, filter, out_c, &stage, dst[0], dst[1]);
                }
                filter += 2 * pairs * groups;
                stage.words += TP_DSP_PAIR_WORDS * pairs;
            }
        }
    }
}
