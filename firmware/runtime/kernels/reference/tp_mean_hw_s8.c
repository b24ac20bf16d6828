/* Reference MEAN over height and width, int8. */
#include "tp_pooling.h"

#include "tp_fixedpoint.h"

void tp_mean_hw_s8(const tp_mean_params *params, const tp_dims *input_dims, const int8_t *input,
                   int8_t *output)
{
    const int32_t depth = input_dims->c;
    const int32_t plane = input_dims->h * input_dims->w;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in_batch = input + b * plane * depth;
        for (int32_t c = 0; c < depth; ++c) {
            int32_t sum = params->sum_offset;
            for (int32_t i = 0; i < plane; ++i) {
                sum += in_batch[i * depth + c];
            }
            const int32_t value = tp_requantize(sum, params->requant.multiplier, params->requant.shift) +
                                  params->output_offset;
            output[b * depth + c] = (int8_t)tp_clamp(value, INT8_MIN, INT8_MAX);
        }
    }
}
