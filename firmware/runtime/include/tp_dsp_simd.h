/* SIMD primitives of the Arm DSP extension used by kernels/dsp/.
 *
 * On a core with the DSP extension (Cortex-M4, M7, M33: __ARM_FEATURE_DSP) these are
 * the ACLE intrinsics of arm_acle.h, or one instruction of inline assembly where GCC
 * does not fold the rotation into SXTB16/SXTAB16. Elsewhere (the host) they are exact C
 * equivalents, so the same kernels can be tested natively; Cortex-M3 never uses them.
 * Values are 32-bit words holding four int8 or two int16 lanes (lane 0 in the low bits).
 */
#ifndef TP_DSP_SIMD_H
#define TP_DSP_SIMD_H

#include <stdint.h>
#include <string.h>

/* Four int8 lanes from any address (an unaligned LDR on Armv7E-M and Armv8-M Mainline). */
static inline int32_t tp_read_s8x4(const int8_t *p)
{
    int32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* Lanes 0 and 2, sign-extended to int16. */
static inline int32_t tp_sxtb16(int32_t x)
{
    return (int32_t)__sxtb16(x);
}

/* Lanes 1 and 3, sign-extended to int16. */
static inline int32_t tp_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* a (two int16) plus lanes 0 and 2 of x, per halfword. */
static inline int32_t tp_sxtab16(int32_t a, int32_t x)
{
    return (int32_t)__sxtab16(a, x);
}

/* a (two int16) plus lanes 1 and 3 of x, per halfword. */
static inline int32_t tp_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* acc + x.lo * y.lo + x.hi * y.hi (int16 halves). */
static inline int32_t tp_smlad(int32_t x, int32_t y, int32_t acc)
{
    return __smlad(x, y, acc);
}

/* acc + x.lo * y.lo */
static inline int32_t tp_smlabb(int32_t x, int32_t y, int32_t acc)
{
    return __smlabb(x, y, acc);
}

/* acc + x.hi * y.hi */
static inline int32_t tp_smlatt(int32_t x, int32_t y, int32_t acc)
{
    return __smlatt(x, y, acc);
}

/* acc + x.lo * y.hi */
static inline int32_t tp_smlabt(int32_t x, int32_t y, int32_t acc)
{
    return __smlabt(x, y, acc);
}

/* acc + x.hi * y.lo */
static inline int32_t tp_smlatb(int32_t x, int32_t y, int32_t acc)
{
    return __smlatb(x, y, acc);
}

/* The low halfwords of a and of b: (a.lo, b.lo). */
static inline int32_t tp_pkhbt16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* The high halfwords of b and of a: (b.hi, a.hi). */
static inline int32_t tp_pkhtb16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* The high word of a * b, rounded: (a * b + 2^31) >> 32 (SMMULR). */
static inline int32_t tp_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* acc plus the high word of a * b, rounded: (acc * 2^32 + a * b + 2^31) >> 32 (SMMLAR). */
static inline int32_t tp_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* x saturated to the int8 range (SSAT #8). */
static inline int32_t tp_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

#else /* portable equivalents */

static inline int32_t tp_simd_lo16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}

static inline int32_t tp_simd_hi16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x >> 16);
}

static inline int32_t tp_simd_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

static inline int32_t tp_simd_lane8(int32_t x, int lane)
{
    return (int8_t)(uint8_t)((uint32_t)x >> (8 * lane));
}

static inline int32_t tp_sxtb16(int32_t x)
{
    return tp_simd_pack16(tp_simd_lane8(x, 0), tp_simd_lane8(x, 2));
}

static inline int32_t tp_sxtb16_ror8(int32_t x)
{
    return tp_simd_pack16(tp_simd_lane8(x, 1), tp_simd_lane8(x, 3));
}

static inline int32_t tp_sxtab16(int32_t a, int32_t x)
{
    return tp_simd_pack16(tp_simd_lo16(a) + tp_simd_lane8(x, 0), tp_simd_hi16(a) + tp_simd_lane8(x, 2));
}

static inline int32_t tp_sxtab16_ror8(int32_t a, int32_t x)
{
    return tp_simd_pack16(tp_simd_lo16(a) + tp_simd_lane8(x, 1), tp_simd_hi16(a) + tp_simd_lane8(x, 3));
}

/* Sums wrap modulo 2^32 as the instructions do. */
static inline int32_t tp_smlad(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tp_simd_lo16(x) * tp_simd_lo16(y)) +
                     (uint32_t)(tp_simd_hi16(x) * tp_simd_hi16(y)));
}

static inline int32_t tp_smlabb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tp_simd_lo16(x) * tp_simd_lo16(y)));
}

static inline int32_t tp_smlatt(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tp_simd_hi16(x) * tp_simd_hi16(y)));
}

static inline int32_t tp_smlabt(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tp_simd_lo16(x) * tp_simd_hi16(y)));
}

static inline int32_t tp_smlatb(int32_t x, int32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tp_simd_hi16(x) * tp_simd_lo16(y)));
}

static inline int32_t tp_pkhbt16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

static inline int32_t tp_pkhtb16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFF0000u) | ((uint32_t)b >> 16));
}

static inline int32_t tp_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}

static inline int32_t tp_smmlar(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((int64_t)(((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * b) + 0x80000000u) >> 32);
}

static inline int32_t tp_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

#endif /* __ARM_FEATURE_DSP */

#endif /* TP_DSP_SIMD_H */
