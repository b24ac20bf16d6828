/* ADD of two same-shape int8 tensors for the DSP builds: the reference arithmetic (both
 * operands to a common scale with headroom, summed, rescaled) in one flat loop with the
 * parameters in registers, instead of the broadcast walk's index arithmetic per element.
 * Element i of both inputs is read before output i is written, so it may run in place. */
#include "tp_dsp.h"

void tp_add_s8_dsp(const tp_add_params *params, int32_t count, const int8_t *input1, const int8_t *input2,
                   int8_t *output)
{
    const int32_t offset1 = params->input1_offset, offset2 = params->input2_offset;
    const int32_t left = params->left_shift;
    const int32_t m1 = params->input1.multiplier, e1 = params->input1.shift;
    const int32_t m2 = params->input2.multiplier, e2 = params->input2.shift;
    const int32_t m_out = params->output.multiplier, e_out = params->output.shift;
    const int32_t output_offset = params->output_offset;
    const int32_t lo = params->activation.min, hi = params->activation.max;
    for (int32_t i = 0; i < count; ++i) {
        /* Every multiplier is positive and every shift <= 0 (the generator checks), where
         * tp_dsp_requantize equals the reference's tp_requantize_smaller_than_one. */
        const int32_t scaled1 = tp_dsp_requantize(tp_shift_left(input1[i] + offset1, left), m1, e1);
        const int32_t scaled2 = tp_dsp_requantize(tp_shift_left(input2[i] + offset2, left), m2, e2);
        const int32_t result = tp_dsp_requantize(scaled1 + scaled2, m_out, e_out) + output_offset;
        output[i] = (int8_t)tp_clamp(result, lo, hi);
    }
}
