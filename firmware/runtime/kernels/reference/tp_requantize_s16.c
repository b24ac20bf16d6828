/* Reference QUANTIZE to and from int16: int16 -> int8, int16, int32 and int8, int32 -> int16
 * (TFLM's Requantize: rescale the offset input, add the output zero point, saturate to the
 * output's type). */
#include "tp_quantize.h"

#include "tp_fixedpoint.h"

/* The rescaled value before saturation. The subtraction and the sum wrap as TFLM's int32
 * arithmetic does; only an int32 input can come near the edge. */
static inline int32_t rescale_one(const tp_requantize_params *params, int32_t input)
{
    const int32_t offset = (int32_t)((uint32_t)input - (uint32_t)params->input_zero_point);
    const uint32_t scaled = (uint32_t)tp_requantize(offset, params->requant.multiplier, params->requant.shift) +
                            (uint32_t)params->output_zero_point;
    return (int32_t)scaled;
}

void tp_requantize_s16_s8(const tp_requantize_params *params, int32_t size, const int16_t *input,
                          int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)tp_clamp(rescale_one(params, input[i]), INT8_MIN, INT8_MAX);
    }
}

void tp_requantize_s16_s32(const tp_requantize_params *params, int32_t size, const int16_t *input,
                           int32_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = rescale_one(params, input[i]); /* no int32 clamp can bite */
    }
}

void tp_requantize_s16_s16(const tp_requantize_params *params, int32_t size, const int16_t *input,
                           int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)tp_clamp(rescale_one(params, input[i]), INT16_MIN, INT16_MAX);
    }
}

void tp_requantize_s8_s16(const tp_requantize_params *params, int32_t size, const int8_t *input,
                          int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)tp_clamp(rescale_one(params, input[i]), INT16_MIN, INT16_MAX);
    }
}

void tp_requantize_s32_s16(const tp_requantize_params *params, int32_t size, const int32_t *input,
                           int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)tp_clamp(rescale_one(params, input[i]), INT16_MIN, INT16_MAX);
    }
}
