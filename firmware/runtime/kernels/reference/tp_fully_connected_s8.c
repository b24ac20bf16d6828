/* Reference FULLY_CONNECTED, int8 activations and weights, int32 bias. */
#include "tp_fully_connected.h"

#include "tp_fixedpoint.h"

void tp_fully_connected_s8(const tp_fc_params *params, const tp_per_channel_requant *quant,
                           int32_t batches, int32_t accum_depth, int32_t output_depth,
                           const int8_t *input, const int8_t *filter, const int32_t *bias,
                           int8_t *output)
{
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input + b * accum_depth;
        for (int32_t o = 0; o < output_depth; ++o) {
            const int8_t *w = filter + o * accum_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < accum_depth; ++d) {
                acc += (in[d] + params->input_offset) * (w[d] + params->filter_offset);
            }
            if (bias != NULL) {
                acc += bias[o];
            }
            const int32_t q = params->per_channel ? o : 0;
            acc = tp_requantize(acc, quant->multiplier[q], quant->shift[q]);
            acc += params->output_offset;
            output[b * output_depth + o] =
                (int8_t)tp_clamp(acc, params->activation.min, params->activation.max);
        }
    }
}
