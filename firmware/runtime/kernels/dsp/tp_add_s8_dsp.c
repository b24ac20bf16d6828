/* ADD or SUB of two same-shape int8 tensors for the DSP builds. The reference brings each operand
 * to a common scale (offset, shift left by 20, rescale) before summing; that depends on the
 * operand's int8 value alone, so the generator tabulates it, and an element is two table reads,
 * a sum and the output's requantization in the short form of tp_dsp.h (with the rounding
 * divide's -1 for negatives taken from the sum's sign, as in the convolutions, and dropped with
 * the rounding where the right shift is 0). Element i of
 * both inputs is read before output i is written, so it may run in place. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"

/* Output i from the two inputs' table entries; the clamp is one SSAT where it spans int8. */
__attribute__((always_inline)) static inline void tp_dsp_add_loop(const tp_add_params *params, const int32_t *scaled1,
                                                                  const int32_t *scaled2, const int32_t *words,
                                                                  int32_t count, const int8_t *input1,
                                                                  const int8_t *input2, int8_t *output, int saturate)
{
    const int32_t multiplier = params->output.multiplier;
    const int32_t rounding = words[0], right = words[1], sign_mask = words[2];
    const int32_t lo = params->activation.min, hi = params->activation.max;
    for (int32_t i = 0; i < count; ++i) {
        const int32_t sum = scaled1[input1[i]] + scaled2[input2[i]];
        const int32_t value =
            tp_smmlar((int32_t)((uint32_t)sum << 1), multiplier, rounding + ((sum >> 31) & sign_mask)) >> right;
        output[i] = (int8_t)(saturate ? tp_ssat8(value) : tp_clamp(value, lo, hi));
    }
}

void tp_add_s8_dsp(const tp_add_params *params, const int32_t *scaled, const int32_t *output_words, int32_t count,
                   const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const int32_t *scaled1 = scaled + 128, *scaled2 = scaled + 256 + 128; /* indexed by the int8 value */
    if (params->activation.min == -128 && params->activation.max == 127) {
        tp_dsp_add_loop(params, scaled1, scaled2, output_words, count, input1, input2, output, 1);
    } else {
        tp_dsp_add_loop(params, scaled1, scaled2, output_words, count, input1, input2, output, 0);
    }
}
