/* Reference QUANTIZE int8 -> int8. */
#include "tp_quantize.h"

#include "tp_fixedpoint.h"

void tp_requantize_s8(const tp_requantize_params *params, int32_t size, const int8_t *input,
                      int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tp_requantize(input[i] - params->input_zero_point, params->requant.multiplier,
                                             params->requant.shift) +
                               params->output_zero_point;
        output[i] = (int8_t)tp_clamp(scaled, INT8_MIN, INT8_MAX);
    }
}
