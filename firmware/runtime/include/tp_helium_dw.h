/* DEPTHWISE_CONV_2D (depth multiplier 1) for cores with the M-profile Vector Extension
 * (Cortex-M55, M85): kernels/helium/.
 *
 * NHWC keeps a pixel's channels contiguous, so the kernel runs eight channels per vector:
 * VLDRB.S16 widens eight int8 inputs (and eight taps) to int16 lanes, VMULLB and VMULLT multiply
 * the even and the odd lanes into int32 (MVE has no vector-by-vector integer VMLA) and two VADDs
 * accumulate them. Interior pixels (every tap inside the input) go two along a row at a time,
 * sharing each tap vector (all eight Q registers busy), with the input offset folded into an
 * effective bias by the generator (bias + input_offset * sum(filter)); a pixel whose window
 * crosses the border sums only its valid taps, adding the offset to each input, on the plain
 * bias. A last group of fewer than eight channels is tail-predicated (VCTP). Requantization is
 * tp_requantize, four lanes at once (tp_helium_dw_requantize), on the even and the odd lanes.
 */
#ifndef TP_HELIUM_DW_H
#define TP_HELIUM_DW_H

#include <arm_mve.h>

#include "tp_conv.h"
#include "tp_conv_inplace.h"
#include "tp_types.h"

/* Per group of eight output channels (the count padded with zero channels to a multiple of
 * eight), TP_HELIUM_DW_GROUP_WORDS int32: plain bias, effective bias, multiplier, left shift
 * (the shift's positive part), right shift (its negative part, <= 0), each as the group's even
 * channels' four lanes then its odd channels' four. */
#define TP_HELIUM_DW_GROUP_WORDS 40

/* The kernel's helpers are inlined where that pays, but not at -O0: there every inlined
 * temporary keeps a stack slot of its own, and the whole kernel's frame grew past 24 KB, more
 * than the boards' 16 KB stack. */
#if defined(__OPTIMIZE__)
#define TP_HELIUM_DW_INLINE __attribute__((always_inline)) static inline
#else
#define TP_HELIUM_DW_INLINE static inline
#endif

/* tp_requantize, four lanes: the wrapping left shift, VQRDMULH (floor((2ab + 2^31) / 2^32),
 * saturated: exactly the reference's nudge-and-truncate high multiply for either sign of ab, as
 * tp_dsp_requantize's comment shows), then the rounding divide
 * by 2^-right. VRSHL by a negative amount rounds ties up, (x + 2^(n-1)) >> n computed without
 * overflow; the reference rounds ties away from zero, which for negative x is the same shift of
 * x - 1: floor((x - 1 + 2^(n-1)) / 2^n) rounds up only when the remainder exceeds 2^(n-1). The
 * -1 is the sign bit of x AND right (nonzero only where right < 0); saturating at INT32_MIN
 * changes nothing there (its remainder is 0). */
TP_HELIUM_DW_INLINE int32x4_t tp_helium_dw_requantize(int32x4_t x, int32x4_t multiplier,
                                                                              int32x4_t left, int32x4_t right)
{
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(x, left), multiplier);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, right), 31);
    return vrshlq_s32(vqaddq_s32(high, fixup), right);
}

/* filter: [c8 / 8][kh][kw][8], channels zero-padded to c8 (a multiple of eight), each group's
 * taps together; words: TP_HELIUM_DW_GROUP_WORDS per group. params->depth_multiplier must be 1.
 * Reads no input byte past the input and writes only the output. */
void tp_depthwise_conv2d_s8_helium(const tp_depthwise_conv_params *params, const tp_dims *input_dims,
                                   const int8_t *input, const tp_dims *filter_dims, const int8_t *filter,
                                   const int32_t *words, const tp_dims *output_dims, int8_t *output);

/* The same over its own input, row by row through a ring (tp_conv_inplace.h): buffer holds the
 * input on entry and the output on return. */
void tp_depthwise_conv2d_s8_helium_inplace(const tp_depthwise_conv_params *params, const tp_dims *input_dims,
                                           const tp_dims *filter_dims, const int8_t *filter, const int32_t *words,
                                           const tp_dims *output_dims, const tp_inplace_rows *rows, int8_t *buffer,
                                           int8_t *ring);

#endif /* TP_HELIUM_DW_H */
