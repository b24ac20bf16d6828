/* Reference SOFTMAX, int16 -> int16 (16x8), as TFLite's SoftmaxInt16. */
#include "tp_softmax.h"

/* LUTLookup: 512 base values indexed by the top 9 bits, the low 7 interpolating to the next. */
static int16_t tp_lut_s16(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t offset = value & 0x7f;
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - lut[index]);
    const int32_t delta = (slope * offset + 64) >> 7;
    return (int16_t)(base + delta);
}

static int32_t tp_clz_u32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void tp_softmax_s16(const tp_softmax_s16_params *params, const int16_t *exp_lut, const int16_t *recip_lut,
                    int32_t rows, int32_t depth, const int16_t *input, int16_t *output)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int16_t *in = input + r * depth;
        int16_t *out = output + r * depth;
        int32_t max_in_row = INT16_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = TP_MAX(max_in_row, in[c]);
        }
        int32_t sum_of_exps = 0; /* Q16.15 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t scaled =
                tp_requantize(in[c] - max_in_row, params->input_multiplier, params->input_shift) + 32767;
            out[c] = tp_lut_s16((int16_t)tp_clamp(scaled, INT16_MIN, INT16_MAX), exp_lut);
            sum_of_exps += out[c];
        }
        const int32_t headroom_plus_one = tp_clz_u32((uint32_t)sum_of_exps);
        const int32_t shifted_sum =
            (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int32_t sym_shifted_sum = shifted_sum - ((1 << 15) + (1 << 16));
        const int16_t reciprocal = tp_lut_s16((int16_t)tp_clamp(sym_shifted_sum, INT16_MIN, INT16_MAX), recip_lut);
        const int32_t right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t result = (int32_t)(((int64_t)out[c] * reciprocal + round) >> right_shift);
            out[c] = (int16_t)tp_clamp(result, 0, 32767);
        }
    }
}
