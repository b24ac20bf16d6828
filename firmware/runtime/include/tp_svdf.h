/* SVDF in TFLite Micro's integer form: int8 input, feature weights and output, int32 bias, and
 * time weights and activation state both int16 or both int8.
 *
 * The state is [batches][filters][memory]: per filter, the last `memory` feature activations,
 * oldest first. Per batch row b and filter f:
 *   state[b][f][memory - 1] = clamp_state(requant_feature(sum_i W_f[i] * (x[i] + input_offset))
 *                                         + state_zero_point)    (after the state moved left by one)
 *   t[f] = sum_m T_f[m] * (state[b][f][m] - state_zero_point)
 *   y[b][u] = clamp8(requant_output(bias[u] + sum_{r < rank} t[u * rank + r]) + output_zero_point)
 * where clamp_state saturates to the state's type. The fused activation is not applied: TFLM's
 * integer SVDF leaves it out, and so does this kernel (the output clamp is int8's range).
 *
 * The state is a TFLite variable tensor, which the reference interpreter resets before every
 * invocation: the kernel resets it at the start of each call (0 for an int16 state, the state's
 * zero point for an int8 one, TFLM's reset values), so every call is one independent inference.
 * `state` holds batches * filters * memory elements the call overwrites; `scratch` holds
 * TP_SVDF_SCRATCH_BYTES(filters), and `bias` may be NULL.
 */
#ifndef TP_SVDF_H
#define TP_SVDF_H

#include "tp_types.h"

/* One int32 time-product per filter, then one int32 sum per unit (units <= filters). */
#define TP_SVDF_SCRATCH_BYTES(filters) (2 * (int32_t)(filters) * (int32_t)sizeof(int32_t))

typedef struct {
    int32_t batches;
    int32_t input_size;
    int32_t filters; /* units * rank */
    int32_t rank;
    int32_t memory;
} tp_svdf_dims;

typedef struct {
    int32_t input_offset;      /* minus the input zero point */
    int32_t state_zero_point;  /* added to each new feature activation, taken off in the time product */
    int32_t state_reset;       /* the state's value at the start of each call */
    int32_t output_zero_point;
    tp_requant feature;        /* input scale x feature weights scale / state scale */
    tp_requant output;         /* state scale x time weights scale / output scale */
} tp_svdf_params;

void tp_svdf_s8_s16(const tp_svdf_params *params, const tp_svdf_dims *dims, const int8_t *input,
                    const int8_t *weights_feature, const int16_t *weights_time, const int32_t *bias,
                    int16_t *state, int8_t *output, int32_t *scratch);

void tp_svdf_s8(const tp_svdf_params *params, const tp_svdf_dims *dims, const int8_t *input,
                const int8_t *weights_feature, const int8_t *weights_time, const int32_t *bias, int8_t *state,
                int8_t *output, int32_t *scratch);

#endif /* TP_SVDF_H */
