/* Reference HARD_SWISH, int8, in TFLite's 16-bit fixed-point formulation. */
#include "tp_elementwise.h"

#include "tp_fixedpoint.h"
#include "tp_fixedpoint_s16.h"

/* The input on the scale where 3.0 is 32768, saturated to [-1, 1) in Q15, then
 * mapped to [0, 1): the "relu-ish" factor relu6(x + 3) / 6. */
static int16_t reluish_factor(const tp_hard_swish_params *params, int16_t hires_input)
{
    int16_t value = hires_input;
    if (params->reluish_exponent > 0) {
        /* All but the last bit of the left shift before the multiply, so that any
         * saturation happens in the final one-bit shift. */
        value = tp_sat_left_shift_s16(value, params->reluish_exponent - 1);
    }
    value = tp_sat_rounding_doubling_high_mul_s16(value, params->reluish_multiplier);
    if (params->reluish_exponent > 0) {
        value = tp_sat_left_shift_s16(value, 1);
    }
    if (params->reluish_exponent < 0) {
        value = tp_rounding_divide_by_pot_s16(value, -params->reluish_exponent);
    }
    return (int16_t)((value + (1 << 15)) >> 1);
}

void tp_hard_swish_s8(const tp_hard_swish_params *params, int32_t size, const int8_t *input,
                      int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        /* |input - zero point| <= 255, so 7 bits of left shift still fit in int16. */
        const int16_t hires_input = (int16_t)((input[i] - params->input_zero_point) * (1 << 7));
        const int16_t preshift_input =
            tp_sat_rounding_doubling_high_mul_s16(hires_input, params->output_multiplier);
        /* Truncating multiply: it offsets the bias of the rounding ones above. */
        const int16_t preshift_output =
            tp_sat_doubling_high_mul_s16(reluish_factor(params, hires_input), preshift_input);
        const int16_t scaled = tp_rounding_divide_by_pot_s16(preshift_output, -params->output_exponent);
        const int16_t shifted = tp_wrap_s16(scaled + params->output_zero_point);
        output[i] = (int8_t)tp_clamp(shifted, INT8_MIN, INT8_MAX);
    }
}
