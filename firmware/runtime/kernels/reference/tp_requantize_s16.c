/* Reference QUANTIZE int16 -> int8 and int16 -> int32 (TFLM's Requantize: rescale the offset
 * input, add the output zero point, saturate). */
#include "tp_quantize.h"

#include "tp_fixedpoint.h"

void tp_requantize_s16_s8(const tp_requantize_params *params, int32_t size, const int16_t *input,
                          int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tp_requantize(input[i] - params->input_zero_point, params->requant.multiplier,
                                             params->requant.shift) +
                               params->output_zero_point;
        output[i] = (int8_t)tp_clamp(scaled, INT8_MIN, INT8_MAX);
    }
}

void tp_requantize_s16_s32(const tp_requantize_params *params, int32_t size, const int16_t *input,
                           int32_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        /* The sum wraps as TFLM's int32 addition does (no int32 clamp can bite). */
        const uint32_t scaled = (uint32_t)tp_requantize(input[i] - params->input_zero_point,
                                                        params->requant.multiplier, params->requant.shift) +
                                (uint32_t)params->output_zero_point;
        output[i] = (int32_t)scaled;
    }
}
