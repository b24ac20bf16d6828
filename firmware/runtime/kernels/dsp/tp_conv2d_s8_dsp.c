/* CONV_2D for the DSP extension: im2col two output pixels at a time, then the 2x2-blocked
 * matrix kernel over all output channels. A 1x1, stride-1, unpadded convolution (the
 * pointwise layers of depthwise-separable networks) needs no im2col: adjacent output pixels
 * are adjacent input pixels, so the kernel reads the input in place. */
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

/* The kh * kw * in_c input values under output pixel (oy, ox), in filter order; taps in the
 * padding get pad, the input zero point, which the effective bias turns into zero. */
static void tp_dsp_im2col(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *image,
                          const tp_dims *filter_dims, int32_t oy, int32_t ox, int8_t pad, int8_t *col)
{
    const int32_t channels = input_dims->c, kw = filter_dims->w;
    const int32_t y0 = oy * params->stride.h - params->padding.h;
    const int32_t x0 = ox * params->stride.w - params->padding.w;
    const int32_t fx_begin = tp_conv_tap_begin(x0, params->dilation.w);
    const int32_t fx_end = TP_MAX(fx_begin, tp_conv_tap_end(x0, params->dilation.w, input_dims->w, kw));
    if (params->dilation.w == 1 && fx_begin == 0 && fx_end == kw) {
        /* No tap left or right of the image (most pixels): each filter row is one contiguous run. */
        const int32_t n = kw * channels, row_bytes = input_dims->w * channels;
        int32_t offset = y0 * row_bytes + x0 * channels;
        const int32_t step = params->dilation.h * row_bytes;
        for (int32_t fy = 0, y = y0; fy < filter_dims->h; ++fy, y += params->dilation.h, offset += step, col += n) {
            if (y < 0 || y >= input_dims->h) {
                tp_dsp_fill(col, pad, n);
            } else {
                tp_dsp_copy(col, image + offset, n);
            }
        }
        return;
    }
    for (int32_t fy = 0; fy < filter_dims->h; ++fy, col += kw * channels) {
        const int32_t y = y0 + fy * params->dilation.h;
        if (y < 0 || y >= input_dims->h) {
            tp_dsp_fill(col, pad, kw * channels);
            continue;
        }
        const int8_t *row = image + y * input_dims->w * channels;
        tp_dsp_fill(col, pad, fx_begin * channels);
        if (params->dilation.w == 1) {
            tp_dsp_copy(col + fx_begin * channels, row + (x0 + fx_begin) * channels, (fx_end - fx_begin) * channels);
        } else {
            for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                tp_dsp_copy(col + fx * channels, row + (x0 + fx * params->dilation.w) * channels, channels);
            }
        }
        tp_dsp_fill(col + fx_end * channels, pad, (kw - fx_end) * channels);
    }
}

void tp_conv2d_s8_dsp(const tp_conv_params *params, const tp_per_channel_requant *quant,
                      const tp_dims *input_dims, const int8_t *input,
                      const tp_dims *filter_dims, const int8_t *filter, const int32_t *channels,
                      const tp_dims *output_dims, int8_t *output, int8_t *scratch)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    const int32_t out_w = output_dims->w, out_c = output_dims->c;
    const int32_t pixels = output_dims->h * out_w;
    const int in_place = filter_dims->h == 1 && filter_dims->w == 1 && params->stride.h == 1 &&
                         params->stride.w == 1 && params->padding.h == 0 && params->padding.w == 0;
    const int8_t pad = (int8_t)(-params->input_offset);
    const tp_dsp_output_stage stage = {channels, quant->multiplier, quant->shift, params->output_offset,
                                       params->activation};

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out = output + b * pixels * out_c;
        for (int32_t p = 0; p < pixels; p += 2) {
            const int32_t count = pixels - p >= 2 ? 2 : 1;
            const int8_t *cols = image + p * k;
            if (!in_place) {
                for (int32_t i = 0; i < count; ++i) {
                    tp_dsp_im2col(params, input_dims, image, filter_dims, (p + i) / out_w, (p + i) % out_w, pad,
                                  scratch + i * k);
                }
                cols = scratch;
            }
            tp_dsp_gemm_s8(cols, count, filter, out_c, k, &stage, out + p * out_c, out + (p + count - 1) * out_c);
        }
    }
}
