/* Reference SVDF, TFLite Micro's integer form (tp_svdf.h): the same integer operations in the
 * same order as its EvalIntegerSvdfReference, for an int16 and for an int8 state. Sums wrap
 * as TFLM's int32 arithmetic does, without C's undefined signed overflow. */
#include "tp_svdf.h"

#include "tp_fixedpoint.h"

#define TP_SVDF_DEFINE(name, state_t, state_min, state_max)                                                \
    void name(const tp_svdf_params *params, const tp_svdf_dims *dims, const int8_t *input,                  \
              const int8_t *weights_feature, const state_t *weights_time, const int32_t *bias,              \
              state_t *state, int8_t *output, int32_t *scratch)                                             \
    {                                                                                                       \
        const int32_t filters = dims->filters;                                                              \
        const int32_t memory = dims->memory;                                                                \
        const int32_t units = filters / dims->rank;                                                         \
        const int32_t state_size = dims->batches * filters * memory;                                        \
        int32_t *products = scratch;       /* [filters] */                                                  \
        int32_t *sums = scratch + filters; /* [units] */                                                    \
        /* Each call is one inference from TFLM's reset state; then the state moves left by one. */         \
        for (int32_t i = 0; i < state_size; ++i) {                                                          \
            state[i] = (state_t)params->state_reset;                                                        \
        }                                                                                                   \
        for (int32_t i = 0; i + 1 < state_size; ++i) {                                                      \
            state[i] = state[i + 1];                                                                        \
        }                                                                                                   \
        for (int32_t b = 0; b < dims->batches; ++b) {                                                       \
            const int8_t *x = input + b * dims->input_size;                                                 \
            state_t *s = state + b * filters * memory;                                                      \
            /* Feature matmul: each filter's newest activation, in the state's last column. */              \
            for (int32_t f = 0; f < filters; ++f) {                                                         \
                const int8_t *w = weights_feature + f * dims->input_size;                                   \
                int32_t acc = 0;                                                                            \
                for (int32_t i = 0; i < dims->input_size; ++i) {                                            \
                    acc += (int32_t)w[i] * ((int32_t)x[i] + params->input_offset);                          \
                }                                                                                           \
                acc = tp_clamp(tp_requantize(acc, params->feature.multiplier, params->feature.shift),      \
                               state_min, state_max);                                                       \
                s[f * memory + memory - 1] = (state_t)(params->state_zero_point + acc);                     \
            }                                                                                               \
            /* Time: each filter's weights dotted with its memory. */                                       \
            for (int32_t f = 0; f < filters; ++f) {                                                         \
                uint32_t acc = 0;                                                                           \
                for (int32_t m = 0; m < memory; ++m) {                                                      \
                    acc += (uint32_t)((int32_t)weights_time[f * memory + m] *                               \
                                      ((int32_t)s[f * memory + m] - params->state_zero_point));             \
                }                                                                                           \
                products[f] = (int32_t)acc;                                                                 \
            }                                                                                               \
            /* Bias, rank reduction, output rescale. */                                                     \
            for (int32_t u = 0; u < units; ++u) {                                                           \
                uint32_t acc = bias != NULL ? (uint32_t)bias[u] : 0u;                                       \
                for (int32_t r = 0; r < dims->rank; ++r) {                                                  \
                    acc += (uint32_t)products[u * dims->rank + r];                                          \
                }                                                                                           \
                sums[u] = (int32_t)acc;                                                                     \
            }                                                                                               \
            int8_t *y = output + b * units;                                                                 \
            for (int32_t u = 0; u < units; ++u) {                                                           \
                const int32_t scaled = tp_requantize(sums[u], params->output.multiplier, params->output.shift) \
                                       + params->output_zero_point;                                         \
                y[u] = (int8_t)tp_clamp(scaled, INT8_MIN, INT8_MAX);                                        \
            }                                                                                               \
        }                                                                                                   \
    }

TP_SVDF_DEFINE(tp_svdf_s8_s16, int16_t, INT16_MIN, INT16_MAX)
TP_SVDF_DEFINE(tp_svdf_s8, int8_t, INT8_MIN, INT8_MAX)
