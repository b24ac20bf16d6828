/* Reference DEPTHWISE_CONV_2D, int16 activations, int8 filter, int64 bias, per-channel requant (16x8). */
#include "tp_conv.h"

#include "tp_fixedpoint.h"

void tp_depthwise_conv2d_s16(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                             const tp_dims *input_dims, const int16_t *input,
                             const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                             const tp_dims *output_dims, int16_t *output)
{
    const tp_conv_params *conv = &params->conv;
    int16_t *out = output;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int16_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t in_y0 = oy * conv->stride.h - conv->padding.h;
            const int32_t fy_begin = tp_conv_tap_begin(in_y0, conv->dilation.h);
            const int32_t fy_end = tp_conv_tap_end(in_y0, conv->dilation.h, input_dims->h, filter_dims->h);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                const int32_t in_x0 = ox * conv->stride.w - conv->padding.w;
                const int32_t fx_begin = tp_conv_tap_begin(in_x0, conv->dilation.w);
                const int32_t fx_end = tp_conv_tap_end(in_x0, conv->dilation.w, input_dims->w, filter_dims->w);
                for (int32_t oc = 0; oc < output_dims->c; ++oc) {
                    const int32_t ic = oc / params->depth_multiplier;
                    /* Each product fits int32; their sum, with the int64 bias, may not. */
                    int64_t acc = 0;
                    for (int32_t fy = fy_begin; fy < fy_end; ++fy) {
                        const int32_t in_y = in_y0 + fy * conv->dilation.h;
                        for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                            const int32_t in_x = in_x0 + fx * conv->dilation.w;
                            const int32_t pixel = image[(in_y * input_dims->w + in_x) * input_dims->c + ic];
                            const int32_t tap = filter[(fy * filter_dims->w + fx) * filter_dims->c + oc];
                            acc += (int64_t)(tap * pixel);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    const int32_t scaled = tp_requantize_s64(acc, quant->multiplier[oc], quant->shift[oc]);
                    *out++ = (int16_t)tp_clamp(scaled, conv->activation.min, conv->activation.max);
                }
            }
        }
    }
}
