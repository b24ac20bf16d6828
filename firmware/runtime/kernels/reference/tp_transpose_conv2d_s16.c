/* Reference TRANSPOSE_CONV, int16 activations, int8 filter, int64 bias, per-channel requant (16x8).
 *
 * Output-stationary like the int8 kernel (see tp_transpose_conv.h): each output value is summed
 * in an int64 register, the same terms TFLite Micro scatters into its int64 scratch.
 */
#include "tp_transpose_conv.h"

#include "tp_fixedpoint.h"

void tp_transpose_conv2d_s16(const tp_conv_params *params, const tp_per_channel_requant *quant,
                             const tp_dims *input_dims, const int16_t *input,
                             const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                             const tp_dims *output_dims, int16_t *output)
{
    const int32_t in_c = input_dims->c;
    const int32_t filter_size = filter_dims->h * filter_dims->w * in_c;
    int16_t *out = output;

    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int16_t *image = input + b * input_dims->h * input_dims->w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            int32_t iy_first, iy_last;
            tp_transpose_conv_sources(oy, params->stride.h, params->padding.h, filter_dims->h, input_dims->h,
                                      &iy_first, &iy_last);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                int32_t ix_first, ix_last;
                tp_transpose_conv_sources(ox, params->stride.w, params->padding.w, filter_dims->w, input_dims->w,
                                          &ix_first, &ix_last);
                for (int32_t oc = 0; oc < output_dims->c; ++oc) {
                    const int8_t *weights = filter + oc * filter_size;
                    int64_t acc = 0;
                    for (int32_t iy = iy_first; iy <= iy_last; ++iy) {
                        const int32_t fy = oy + params->padding.h - iy * params->stride.h;
                        for (int32_t ix = ix_first; ix <= ix_last; ++ix) {
                            const int32_t fx = ox + params->padding.w - ix * params->stride.w;
                            const int16_t *pixel = image + (iy * input_dims->w + ix) * in_c;
                            const int8_t *taps = weights + (fy * filter_dims->w + fx) * in_c;
                            for (int32_t ic = 0; ic < in_c; ++ic) {
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
