/* Integer arithmetic shared by the kernels, matching TFLite's reference
 * semantics bit for bit (gemmlowp-style rounding, "double rounding" requant).
 */
#ifndef TP_FIXEDPOINT_H
#define TP_FIXEDPOINT_H

#include <stdint.h>

#define TP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TP_MIN(a, b) ((a) < (b) ? (a) : (b))

static inline int32_t tp_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* High 32 bits of 2*a*b, rounded to nearest; saturates the one overflow case. */
static inline int32_t tp_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* x / 2^exponent, rounded to nearest with ties away from zero. */
static inline int32_t tp_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Wrapping left shift (TFLite multiplies in int32 here; keep its wrap without UB). */
static inline int32_t tp_shift_left(int32_t x, int32_t shift)
{
    return (int32_t)((uint32_t)x << shift);
}

/* MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), rounded. */
static inline int32_t tp_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return tp_rounding_divide_by_pot(
        tp_sat_rounding_doubling_high_mul(tp_shift_left(x, left), multiplier), right);
}

/* MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t tp_requantize_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return tp_rounding_divide_by_pot(tp_sat_rounding_doubling_high_mul(x, multiplier), -shift);
}

/* MultiplyByQuantizedMultiplierGreaterThanOne (shift >= 0). */
static inline int32_t tp_requantize_greater_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return tp_sat_rounding_doubling_high_mul(tp_shift_left(x, shift), multiplier);
}

/* MultiplyByQuantizedMultiplier for an int64 accumulator (16x8 kernels): the multiplier rounded
 * to 16 bits, one rounding shift. */
static inline int32_t tp_requantize_s64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t result = (x * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift;
    return (int32_t)result;
}

#endif /* TP_FIXEDPOINT_H */
