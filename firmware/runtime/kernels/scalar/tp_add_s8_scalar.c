/* ADD or SUB of two same-shape int8 tensors for cores without the DSP extension: the operands'
 * rescaling depends on their int8 values alone, so the generator tabulates it (the DSP set's
 * tables, tp_add_s8_dsp.c), and an element is two table reads, a sum and the output's
 * requantization without a 64-bit multiply. Element i of both inputs is read before output i
 * is written, so it may run in place. */
#include "tp_scalar.h"

void tp_add_s8_scalar(const tp_add_params *params, const int32_t *scaled, int32_t count, const int8_t *input1,
                      const int8_t *input2, int8_t *output)
{
    const int32_t *scaled1 = scaled + 128, *scaled2 = scaled + 256 + 128; /* indexed by the int8 value */
    const int32_t multiplier = params->output.multiplier, shift = params->output.shift;
    const int32_t offset = params->output_offset, lo = params->activation.min, hi = params->activation.max;
    for (int32_t i = 0; i < count; ++i) {
        const int32_t sum = scaled1[input1[i]] + scaled2[input2[i]];
        output[i] = (int8_t)tp_clamp(tp_scalar_requantize(sum, multiplier, shift) + offset, lo, hi);
    }
}
