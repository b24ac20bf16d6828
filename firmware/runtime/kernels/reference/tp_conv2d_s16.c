/* Reference CONV_2D, int16 activations, int8 filter, int64 bias, per-channel requant (16x8). */
#include "tp_conv.h"

#include "tp_fixedpoint.h"

void tp_conv2d_s16(const tp_conv_params *params, const tp_per_channel_requant *quant,
                  const tp_dims *input_dims, const int16_t *input,
                  const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                  const tp_dims *output_dims, int16_t *output)
{
    const int32_t group_depth = filter_dims->c;
    const int32_t filters_per_group = output_dims->c / (input_dims->c / group_depth);
    const int32_t filter_size = filter_dims->h * filter_dims->w * group_depth;
    int16_t *out = output;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int16_t *image = input + b * input_dims->h * input_dims->w * input_dims->c;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t in_y0 = oy * params->stride.h - params->padding.h;
            const int32_t fy_begin = tp_conv_tap_begin(in_y0, params->dilation.h);
            const int32_t fy_end = tp_conv_tap_end(in_y0, params->dilation.h, input_dims->h, filter_dims->h);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                const int32_t in_x0 = ox * params->stride.w - params->padding.w;
                const int32_t fx_begin = tp_conv_tap_begin(in_x0, params->dilation.w);
                const int32_t fx_end = tp_conv_tap_end(in_x0, params->dilation.w, input_dims->w, filter_dims->w);
                for (int32_t oc = 0; oc < output_dims->c; ++oc) {
                    const int32_t group_first_channel = (oc / filters_per_group) * group_depth;
                    const int8_t *weights = filter + oc * filter_size;
                    int64_t acc = 0;
                    for (int32_t fy = fy_begin; fy < fy_end; ++fy) {
                        const int32_t in_y = in_y0 + fy * params->dilation.h;
                        for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                            const int32_t in_x = in_x0 + fx * params->dilation.w;
                            const int16_t *pixel =
                                image + (in_y * input_dims->w + in_x) * input_dims->c + group_first_channel;
                            const int8_t *taps = weights + (fy * filter_dims->w + fx) * group_depth;
                            for (int32_t ic = 0; ic < group_depth; ++ic) {
                                acc += (int64_t)(taps[ic] * pixel[ic]);
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    const int32_t scaled = tp_requantize_s64(acc, quant->multiplier[oc], quant->shift[oc]);
                    *out++ = (int16_t)tp_clamp(scaled, params->activation.min, params->activation.max);
                }
            }
        }
    }
}
