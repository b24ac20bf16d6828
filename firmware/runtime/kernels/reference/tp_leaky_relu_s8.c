/* Reference LEAKY_RELU, int8. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"

void tp_leaky_relu_s8(const tp_leaky_relu_params *params, int32_t size, const int8_t *input,
                      int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        const int32_t centered = input[i] - params->input_zero_point;
        /* Alpha may be negative or above 1, so the branch is on the sign, not a max. */
        const tp_requant *requant = centered >= 0 ? &params->identity : &params->alpha;
        const int32_t scaled =
            tp_requantize(centered, requant->multiplier, requant->shift) + params->output_offset;
        output[i] = (int8_t)tp_clamp(scaled, INT8_MIN, INT8_MAX);
    }
}
