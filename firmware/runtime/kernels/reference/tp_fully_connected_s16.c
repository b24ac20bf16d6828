/* Reference FULLY_CONNECTED, int16 activations, int8 weights, int64 bias (16x8). */
#include "tp_fully_connected.h"

#include "tp_fixedpoint.h"

void tp_fully_connected_s16(const tp_fc_params *params, const tp_per_channel_requant *quant,
                           int32_t batches, int32_t accum_depth, int32_t output_depth,
                           const int16_t *input, const int8_t *filter, const int64_t *bias,
                           int16_t *output)
{
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *in = input + b * accum_depth;
        for (int32_t o = 0; o < output_depth; ++o) {
            const int8_t *w = filter + o * accum_depth;
            int64_t acc = 0;
            for (int32_t d = 0; d < accum_depth; ++d) {
                acc += (int64_t)((in[d] + params->input_offset) * (w[d] + params->filter_offset));
            }
            if (bias != NULL) {
                acc += bias[o];
            }
            const int32_t q = params->per_channel ? o : 0;
            int32_t scaled = tp_requantize_s64(acc, quant->multiplier[q], quant->shift[q]);
            scaled += params->output_offset;
            output[b * output_depth + o] =
                (int16_t)tp_clamp(scaled, params->activation.min, params->activation.max);
        }
    }
}
