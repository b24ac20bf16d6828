/* tinyml-ptq runtime: shared types of the int8 kernels.
 *
 * Kernels are plain functions over explicit dims and params structs, in the
 * manner of CMSIS-NN: no hidden state, no heap, no set-up at run time. Every
 * parameter (multipliers, shifts, tables, padding) is computed by the code
 * generator and stored as const data.
 */
#ifndef TP_TYPES_H
#define TP_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Alignment of arena and weight arrays (word access, SIMD loads). */
#if defined(__GNUC__) || defined(__clang__)
#define TP_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TP_ALIGNED(n)
#endif

/* Tensor dimensions in NHWC order; unused dimensions are 1. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} tp_dims;

/* A height/width pair: strides, dilations, paddings, kernel sizes. */
typedef struct {
    int32_t h;
    int32_t w;
} tp_hw;

/* Clamp range in the output's quantized domain (fused activation). */
typedef struct {
    int32_t min;
    int32_t max;
} tp_activation;

/* Fixed-point output rescale: real multiplier = multiplier * 2^(shift - 31). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} tp_requant;

/* One multiplier and shift per output channel. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} tp_per_channel_requant;

#endif /* TP_TYPES_H */
