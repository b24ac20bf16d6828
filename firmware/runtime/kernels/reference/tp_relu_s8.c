/* Reference RELU, int8: rescale to the output, then clamp. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

void tp_relu_s8(const tp_relu_params *params, int32_t size, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tp_requantize(input[i] - params->input_zero_point, params->requant.multiplier,
                                             params->requant.shift) +
                               params->output_offset;
        output[i] = (int8_t)tp_clamp(scaled, params->activation.min, params->activation.max);
    }
}
