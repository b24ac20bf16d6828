/* CONV_2D for cores without the DSP extension (tp_scalar.h): per block of four output pixels,
 * their input columns gathered into scratch as unsigned bytes, interleaved (column p's value i
 * at 4 * i + p), then per output channel one pass over its filter row, each weight loaded once
 * for the four pixels. */
#include "tp_scalar.h"

/* Column p of the block: the receptive field of output pixel (oy, ox) as x + 128, the padding
 * as the input zero point (+ 128). */
static void gather_column(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *image,
                          const tp_dims *filter_dims, int32_t oy, int32_t ox, uint8_t *column)
{
    const int32_t in_c = input_dims->c;
    const uint8_t pad = (uint8_t)(128 - params->input_offset);
    const int32_t y0 = oy * params->stride.h - params->padding.h;
    const int32_t x0 = ox * params->stride.w - params->padding.w;
    for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
        const int32_t iy = y0 + ky * params->dilation.h;
        const int row_inside = iy >= 0 && iy < input_dims->h;
        for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t ix = x0 + kx * params->dilation.w;
            if (row_inside && ix >= 0 && ix < input_dims->w) {
                const uint8_t *src = (const uint8_t *)image + (iy * input_dims->w + ix) * in_c;
                for (int32_t c = 0; c < in_c; ++c) {
                    column[4 * c] = (uint8_t)(src[c] ^ 0x80);
                }
            } else {
                for (int32_t c = 0; c < in_c; ++c) {
                    column[4 * c] = pad;
                }
            }
            column += 4 * in_c;
        }
    }
}

void tp_conv2d_s8_scalar(const tp_conv_params *params, const tp_per_channel_requant *quant,
                         const tp_dims *input_dims, const int8_t *input,
                         const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                         const uint8_t *short_form, const tp_dims *output_dims, int8_t *output, uint8_t *scratch)
{
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t pixels = output_dims->h * output_dims->w;
    const int32_t out_w = output_dims->w;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        int32_t oy = 0, ox = 0;  /* the block's first pixel */
        for (int32_t pixel = 0; pixel < pixels; pixel += 4) {
            const int32_t count = pixels - pixel < 4 ? pixels - pixel : 4;
            /* A short last block repeats its last pixel: computed, not stored. */
            int32_t y = oy, x = ox;
            for (int32_t p = 0; p < 4; ++p) {
                gather_column(params, input_dims, image, filter_dims, y, x, scratch + p);
                if (p + 1 < count && ++x == out_w) {
                    x = 0;
                    ++y;
                }
            }
            oy = y;
            ox = x + 1;
            if (ox == out_w) {
                ox = 0;
                ++oy;
            }
            int8_t *out = output + (b * pixels + pixel) * out_c;
            const int8_t *w = filter;
            for (int32_t oc = 0; oc < out_c; ++oc) {
                uint32_t acc[4] = {(uint32_t)bias[oc], (uint32_t)bias[oc], (uint32_t)bias[oc], (uint32_t)bias[oc]};
                tp_scalar_dot4(w, scratch, k, acc);
                w += k;
                tp_scalar_store(acc, count, short_form[oc], quant->multiplier[oc],
                                quant->shift[oc], params->output_offset, &params->activation, out + oc, out_c);
            }
        }
    }
}
