/* DEPTHWISE_CONV_2D (depth multiplier 1) for the DSP extension: four channels per step.
 * One word load brings four channels of a tap; SXTAB16 unpacks the input and adds the input
 * offset in the same instruction, SMLABB/SMLATT accumulate each channel on its own. Taps in
 * the padding are skipped, as in the reference. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"

static inline int8_t tp_dsp_dw_output(const tp_conv_params *conv, const tp_per_channel_requant *quant,
                                      int32_t channel, int32_t acc)
{
    acc = tp_dsp_requantize(acc, quant->multiplier[channel], quant->shift[channel]) + conv->output_offset;
    return (int8_t)tp_clamp(acc, conv->activation.min, conv->activation.max);
}

void tp_depthwise_conv2d_s8_dsp(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input,
                                const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                const tp_dims *output_dims, int8_t *output)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t channels = input_dims->c, kw = filter_dims->w;
    const int32_t offset_pair = (int32_t)(((uint32_t)conv->input_offset & 0xFFFFu) |
                                          ((uint32_t)conv->input_offset << 16));
    int8_t *out = output;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t y0 = oy * conv->stride.h - conv->padding.h;
            const int32_t fy_begin = tp_conv_tap_begin(y0, conv->dilation.h);
            const int32_t fy_end = tp_conv_tap_end(y0, conv->dilation.h, input_dims->h, filter_dims->h);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                const int32_t x0 = ox * conv->stride.w - conv->padding.w;
                const int32_t fx_begin = tp_conv_tap_begin(x0, conv->dilation.w);
                const int32_t fx_end = tp_conv_tap_end(x0, conv->dilation.w, input_dims->w, kw);
                /* The window's first tap inside the input, and the step to the next tap. */
                const int8_t *window = image + ((y0 + fy_begin * conv->dilation.h) * input_dims->w +
                                                x0 + fx_begin * conv->dilation.w) * channels;
                const int8_t *taps = filter + (fy_begin * kw + fx_begin) * channels;
                const int32_t x_step = conv->dilation.w * channels;
                const int32_t y_step = conv->dilation.h * input_dims->w * channels;
                const int32_t fx_count = fx_end - fx_begin;
                int32_t c = 0;
                for (; c + 4 <= channels; c += 4) {
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    if (bias != NULL) {
                        a0 = bias[c];
                        a1 = bias[c + 1];
                        a2 = bias[c + 2];
                        a3 = bias[c + 3];
                    }
                    const int8_t *in_row = window + c;
                    const int8_t *w_row = taps + c;
                    for (int32_t fy = fy_begin; fy < fy_end; ++fy, in_row += y_step, w_row += kw * channels) {
                        const int8_t *in_tap = in_row;
                        const int8_t *w_tap = w_row;
                        for (int32_t n = fx_count; n > 0; --n, in_tap += x_step, w_tap += channels) {
                            const int32_t x = tp_read_s8x4(in_tap), w = tp_read_s8x4(w_tap);
                            const int32_t xe = tp_sxtab16(offset_pair, x), xo = tp_sxtab16_ror8(offset_pair, x);
                            const int32_t we = tp_sxtb16(w), wo = tp_sxtb16_ror8(w);
                            a0 = tp_smlabb(xe, we, a0);
                            a2 = tp_smlatt(xe, we, a2);
                            a1 = tp_smlabb(xo, wo, a1);
                            a3 = tp_smlatt(xo, wo, a3);
                        }
                    }
                    out[c] = tp_dsp_dw_output(conv, quant, c, a0);
                    out[c + 1] = tp_dsp_dw_output(conv, quant, c + 1, a1);
                    out[c + 2] = tp_dsp_dw_output(conv, quant, c + 2, a2);
                    out[c + 3] = tp_dsp_dw_output(conv, quant, c + 3, a3);
                }
                for (; c < channels; ++c) {
                    int32_t acc = bias != NULL ? bias[c] : 0;
                    const int8_t *in_row = window + c;
                    const int8_t *w_row = taps + c;
                    for (int32_t fy = fy_begin; fy < fy_end; ++fy, in_row += y_step, w_row += kw * channels) {
                        for (int32_t fx = 0; fx < fx_count; ++fx) {
                            acc += w_row[fx * channels] * (in_row[fx * x_step] + conv->input_offset);
                        }
                    }
                    out[c] = tp_dsp_dw_output(conv, quant, c, acc);
                }
                out += channels;
            }
        }
    }
}
