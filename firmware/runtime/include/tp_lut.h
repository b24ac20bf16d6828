#ifndef TP_LUT_H
#define TP_LUT_H

#include "tp_types.h"

/* Elementwise int8 function by table look-up: output[i] = table[(uint8_t)input[i]].
 * The generator fills the 256 entries with the reference's own integer
 * arithmetic for every input value (LOGISTIC, TANH, RSQRT). input may equal output. */
void tp_lut_s8(const int8_t *table, int32_t size, const int8_t *input, int8_t *output);

/* int16 LOGISTIC and TANH (16x8) as TFLite computes them: the input rescaled to steps of
 * 1/(3 * 4096), (x * multiplier + round) >> shift, then sigmoid interpolated linearly in
 * TFLite's 256-entry table (tanh(x) = 2 * sigmoid(2x) - 1: the same table at twice the
 * pace); Q0.15 output. */
typedef struct {
    int32_t input_multiplier; /* <= 32767 */
    int32_t input_shift;      /* a rounding right shift, 0..31 */
} tp_sigmoid_s16_params;

/* sigmoid(k / 24) in unsigned Q0.16 for k = 0..255 (the last entry saturated), as TFLite
 * tabulates it. Static, so that a kernel using it (these, the LSTM's gates) needs no other
 * source; a file that does not use it drops it. */
static const uint16_t tp_sigmoid_q16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535
};

/* The input in the table's steps: (x * multiplier + round) >> shift (within int32: multiplier <= 32767). */
static inline int32_t tp_sigmoid_input_s16(int16_t x, int32_t multiplier, int32_t shift)
{
    const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    return ((int32_t)x * multiplier + round) >> shift;
}

/* The table at |scaled| / 2^step_bits, interpolated with the low step_bits bits; `saturated`
 * past its end. Scaled by 2^step_bits. */
static inline uint32_t tp_sigmoid_interpolate(int32_t scaled, int32_t step_bits, uint32_t saturated)
{
    const uint32_t magnitude = scaled < 0 ? 0u - (uint32_t)scaled : (uint32_t)scaled;
    const uint32_t index = magnitude >> step_bits;
    if (index >= 255u) {
        return saturated;
    }
    const uint32_t low = tp_sigmoid_q16[index];
    const uint32_t high = tp_sigmoid_q16[index + 1];
    return (low << step_bits) + (magnitude & ((1u << step_bits) - 1u)) * (high - low);
}

/* sigmoid(x): the table in steps of 2^9 of the rescaled input, mirrored for negatives. */
static inline int16_t tp_logistic_value_s16(int16_t x, int32_t multiplier, int32_t shift)
{
    const int32_t scaled = tp_sigmoid_input_s16(x, multiplier, shift);
    uint32_t value = tp_sigmoid_interpolate(scaled, 9, 0x7FFFu << 10);
    value = scaled >= 0 ? value + (1u << 9) : (1u << 25) - value + (1u << 9) - 1u;
    return (int16_t)(value >> 10);
}

/* tanh(x): the table in steps of 2^8, shifted down by a half and mirrored for negatives. */
static inline int16_t tp_tanh_value_s16(int16_t x, int32_t multiplier, int32_t shift)
{
    const int32_t scaled = tp_sigmoid_input_s16(x, multiplier, shift);
    int32_t value = (int32_t)tp_sigmoid_interpolate(scaled, 8, 0xFFFFu << 8);
    value = scaled >= 0 ? value - (1 << 23) + (1 << 7) : -value + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(value >> 8);
}

void tp_logistic_s16(const tp_sigmoid_s16_params *params, int32_t size, const int16_t *input, int16_t *output);

void tp_tanh_s16(const tp_sigmoid_s16_params *params, int32_t size, const int16_t *input, int16_t *output);

#endif /* TP_LUT_H */
