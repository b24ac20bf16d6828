/* Reference SOFTMAX, int8 -> int8 and int8 -> int16. */
#include "tp_softmax.h"

#include "tp_fixedpoint.h"
#include "tp_gemmlowp.h"

/* Accumulation format of the sum of exponentials: Q12.19. */
#define TP_SOFTMAX_ACCUM_INTEGER_BITS 12

/* The row's reciprocal of its sum of exponentials (Q0.31) and the shift that brings a
 * probability down to `output_bits` bits, as TFLM's softmax computes them. */
static inline int32_t softmax_row(const int32_t *exp_table, const int8_t *in, int32_t depth, int32_t output_bits,
                                  int32_t *row_max, int32_t *exponent)
{
    const int32_t sum_of_exps = tp_softmax_row_sum(exp_table, in, depth, TP_SOFTMAX_ACCUM_INTEGER_BITS, row_max);
    /* The row maximum alone contributes 2^19, so the sum is never 0. */
    const int32_t headroom = tp_count_leading_zeros((uint32_t)sum_of_exps);
    /* Q0.31 probability scaled by 2^(bits over unit), down to the output bits. */
    *exponent = TP_SOFTMAX_ACCUM_INTEGER_BITS - headroom + 31 - output_bits;
    return tp_one_over_one_plus_x((int32_t)(((uint32_t)sum_of_exps << headroom) - 0x80000000u));
}

/* One probability before the output offset: exp(x - max) / sum, in output units. */
static inline int32_t softmax_probability(int32_t reciprocal, int32_t exp_value, int32_t exponent)
{
    const int64_t scaled = tp_sat_rounding_doubling_high_mul(reciprocal, exp_value);
    /* scaled >= 0, so TFLite's rounding shift is round-half-up; in 64 bits it stays
     * defined for rows whose sum reaches 2^28, where TFLM stops on a CHECK. */
    return (int32_t)((scaled + ((int64_t)1 << (exponent - 1))) >> exponent);
}

void tp_softmax_s8(const int32_t *exp_table, int32_t rows, int32_t depth, const int8_t *input,
                   int8_t *output)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *in = input + r * depth;
        int8_t *out = output + r * depth;
        int32_t row_max, exponent;
        const int32_t reciprocal = softmax_row(exp_table, in, depth, 8, &row_max, &exponent);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t probability = softmax_probability(reciprocal, exp_table[row_max - in[c]], exponent);
            out[c] = (int8_t)tp_clamp(probability + INT8_MIN, INT8_MIN, INT8_MAX);
        }
    }
}

void tp_softmax_s8_s16(const int32_t *exp_table, int32_t rows, int32_t depth, const int8_t *input,
                       int16_t *output)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *in = input + r * depth;
        int16_t *out = output + r * depth;
        int32_t row_max, exponent;
        const int32_t reciprocal = softmax_row(exp_table, in, depth, 16, &row_max, &exponent);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t probability = softmax_probability(reciprocal, exp_table[row_max - in[c]], exponent);
            out[c] = (int16_t)tp_clamp(probability + INT16_MIN, INT16_MIN, INT16_MAX);
        }
    }
}
