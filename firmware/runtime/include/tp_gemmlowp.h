/* The gemmlowp fixed-point routines TFLite's int8 SOFTMAX evaluates at run
 * time (the reciprocal of the row's sum of exponentials), bit for bit.
 * Exponentials, tanh and logistic of int8 inputs are tabulated by the
 * generator instead, from the same arithmetic.
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

#endif /* TP_GEMMLOWP_H */
