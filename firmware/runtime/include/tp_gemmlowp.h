/* The gemmlowp fixed-point routines TFLite's int8 SOFTMAX and LOG_SOFTMAX
 * evaluate at run time (the reciprocal, or the logarithm, of the row's sum of
 * exponentials), bit for bit. Exponentials, tanh and logistic of int8 inputs
 * are tabulated by the generator instead, from the same arithmetic.
 */
#ifndef TP_GEMMLOWP_H
#define TP_GEMMLOWP_H

#include <stdint.h>

#include "tp_fixedpoint.h"

/* Number of leading zero bits of a nonzero value. */
static inline int32_t tp_count_leading_zeros(uint32_t x)
{
    int32_t count = 0;
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++count;
    }
    return count;
}

/* (a + b) / 2, rounded half away from zero. */
static inline int32_t tp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* x * 2^exponent for 0 < exponent < 31, saturating to the int32 range. */
static inline int32_t tp_saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t limit = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return tp_shift_left(x, exponent);
}

/* 1 / (1 + x) for x in [0, 1), both in Q0.31 (gemmlowp one_over_one_plus_x_for_x_in_0_1):
 * three Newton-Raphson steps on 1 / ((1 + x) / 2) in Q2.29, from the initial
 * estimate 48/17 - 32/17 * d. */
static inline int32_t tp_one_over_one_plus_x(int32_t x)
{
    const int32_t one_q2_29 = 1 << 29;
    const int32_t half_denominator = tp_rounding_half_sum(x, INT32_MAX);
    int32_t estimate = 1515870810 + tp_sat_rounding_doubling_high_mul(half_denominator, -1010580540);
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t error = one_q2_29 - tp_sat_rounding_doubling_high_mul(half_denominator, estimate);
        estimate += tp_saturating_shift_left(tp_sat_rounding_doubling_high_mul(estimate, error), 2);
    }
    /* 1/half_denominator in Q2.29 is 1/(1 + x) in Q1.30; bring it to Q0.31. */
    return tp_saturating_shift_left(estimate, 1);
}

/* x * 2^exponent for 0 <= exponent < 31, saturating (TFLite's SaturatingRoundingMultiplyByPOTParam). */
static inline int32_t tp_saturating_shift_left_param(int32_t x, int32_t exponent)
{
    return exponent == 0 ? x : tp_saturating_shift_left(x, exponent);
}

/* a + b and a - b, saturating to the int32 range. */
static inline int32_t tp_saturating_add(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)(sum > INT32_MAX ? INT32_MAX : (sum < INT32_MIN ? INT32_MIN : sum));
}

static inline int32_t tp_saturating_sub(int32_t a, int32_t b)
{
    const int64_t difference = (int64_t)a - (int64_t)b;
    return (int32_t)(difference > INT32_MAX ? INT32_MAX : (difference < INT32_MIN ? INT32_MIN : difference));
}

/* log(x) for x >= 1 given with input_integer_bits integer bits, returned with
 * output_integer_bits (TFLite's log_x_for_x_greater_than_or_equal_to_1). x is
 * normalized to r in [sqrt(1/2), 1) two ways (with and without a sqrt(1/2)
 * factor) and the better one kept; log(r) comes from a rational approximation
 * around 2^(-1/4), log(x) = exponent * log(2) + log(r), accumulated with one
 * extra integer bit. */
static inline int32_t tp_log_x_for_x_ge_1(int32_t x, int32_t input_integer_bits, int32_t output_integer_bits)
{
    const int32_t log_2 = 1488522236;          /* Q0.31 constants */
    const int32_t sqrt_sqrt_half = 1805811301;
    const int32_t sqrt_half = 1518500250;
    const int32_t one_quarter = 536870912;
    const int32_t alpha_n = 117049297;         /* 11/240 * 2^(1/4) */
    const int32_t alpha_d = 127690142;         /* 1/20 * 2^(1/4) */
    const int32_t alpha_i = 1057819769;        /* 2 / 2^(1/4) - 2^(1/4) */
    const int32_t alpha_f = 638450708;         /* 1/4 * 2^(1/4) */
    const int32_t accum_bits = output_integer_bits + 1;
    const int32_t shifted_quarter = tp_rounding_divide_by_pot(one_quarter, accum_bits);

    /* Candidate a: x shifted up to [1/2, 1), times sqrt(1/2), doubled. */
    const int32_t a_headroom_plus_1 = tp_count_leading_zeros((uint32_t)x);
    const int32_t a_normalized = tp_saturating_shift_left_param(x, a_headroom_plus_1 - 1);
    const int32_t r_a = tp_saturating_shift_left_param(tp_sat_rounding_doubling_high_mul(a_normalized, sqrt_half), 1);
    const int32_t a_exponent = tp_saturating_add(
        tp_saturating_shift_left_param(input_integer_bits - a_headroom_plus_1, 31 - accum_bits), shifted_quarter);
    /* Candidate b: x shifted as far as x * sqrt(1/2) allows. */
    const int32_t b_headroom = tp_count_leading_zeros((uint32_t)tp_sat_rounding_doubling_high_mul(x, sqrt_half)) - 1;
    const int32_t r_b = tp_saturating_shift_left_param(x, b_headroom);
    const int32_t b_exponent = tp_saturating_sub(
        tp_saturating_shift_left_param(input_integer_bits - b_headroom, 31 - accum_bits), shifted_quarter);

    const int32_t r = TP_MIN(r_a, r_b);
    const int32_t exponent = TP_MAX(a_exponent, b_exponent);
    const int32_t p = tp_rounding_half_sum(r, sqrt_sqrt_half);
    const int32_t q = 2 * (r - sqrt_sqrt_half);
    const int32_t q_squared = tp_sat_rounding_doubling_high_mul(q, q);
    const int32_t numerator = tp_sat_rounding_doubling_high_mul(q, r) +
                              tp_sat_rounding_doubling_high_mul(tp_sat_rounding_doubling_high_mul(q, q_squared), alpha_n);
    const int32_t denominator_minus_one =
        tp_sat_rounding_doubling_high_mul(p, alpha_i + q + tp_sat_rounding_doubling_high_mul(alpha_d, q_squared)) +
        tp_sat_rounding_doubling_high_mul(alpha_f, q);
    const int32_t reciprocal = tp_one_over_one_plus_x(denominator_minus_one);
    const int32_t log_accum = tp_sat_rounding_doubling_high_mul(exponent, log_2) +
                              tp_sat_rounding_doubling_high_mul(tp_rounding_divide_by_pot(numerator, accum_bits),
                                                                reciprocal);
    /* From accum_bits integer bits down to output_integer_bits: one saturating doubling. */
    return tp_saturating_shift_left(log_accum, 1);
}

#endif /* TP_GEMMLOWP_H */
