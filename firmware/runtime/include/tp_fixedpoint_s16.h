/* 16-bit fixed-point helpers with gemmlowp's int16 semantics, as TFLite's
 * HARD_SWISH uses them: results wrap or saturate exactly where int16 does.
 */
#ifndef TP_FIXEDPOINT_S16_H
#define TP_FIXEDPOINT_S16_H

#include <stdint.h>

/* Two's-complement wrap of an int32 into int16 range, without
 * implementation-defined conversions. */
static inline int16_t tp_wrap_s16(int32_t x)
{
    return (int16_t)((int32_t)(((uint32_t)x + 0x8000u) & 0xFFFFu) - 0x8000);
}

static inline int16_t tp_sat_s16(int64_t x)
{
    return (int16_t)(x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x));
}

/* High 16 bits of 2*a*b, rounded to nearest; saturates the one overflow case. */
static inline int16_t tp_sat_rounding_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* Same, truncating toward zero instead of rounding (Arm SQDMULH). */
static inline int16_t tp_sat_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* x * 2^amount, saturated to int16. */
static inline int16_t tp_sat_left_shift_s16(int16_t x, int32_t amount)
{
    return tp_sat_s16((int64_t)x * ((int64_t)1 << amount));
}

/* x / 2^exponent rounded half away from zero, with the mask and threshold held
 * in int16 as gemmlowp does (this matters only for exponents of 16 and more). */
static inline int16_t tp_rounding_divide_by_pot_s16(int16_t x, int32_t exponent)
{
    const int16_t mask = tp_wrap_s16((int32_t)((1LL << exponent) - 1));
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = tp_wrap_s16((mask >> 1) + (x < 0 ? 1 : 0));
    return tp_wrap_s16((x >> exponent) + (remainder > threshold ? 1 : 0));
}

#endif /* TP_FIXEDPOINT_S16_H */
