#ifndef TP_FULLY_CONNECTED_H
#define TP_FULLY_CONNECTED_H

#include "tp_types.h"

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t filter_offset; /* minus the filter zero point (0 for symmetric weights) */
    int32_t output_offset; /* the output zero point */
    int32_t per_channel;   /* nonzero: one requant entry per output channel */
    tp_activation activation;
} tp_fc_params;

/* output[b][o] = requant(sum_d (in[b][d] + input_offset) * (w[o][d] + filter_offset) + bias[o]).
 * filter is [output_depth][accum_depth]; bias may be NULL. */
void tp_fully_connected_s8(const tp_fc_params *params, const tp_per_channel_requant *quant,
                           int32_t batches, int32_t accum_depth, int32_t output_depth,
                           const int8_t *input, const int8_t *filter, const int32_t *bias,
                           int8_t *output);

/* int16 activations, int8 weights, int64 bias (may be NULL), an int64 accumulator. */
void tp_fully_connected_s16(const tp_fc_params *params, const tp_per_channel_requant *quant,
                            int32_t batches, int32_t accum_depth, int32_t output_depth,
                            const int16_t *input, const int8_t *filter, const int64_t *bias,
                            int16_t *output);

#endif /* TP_FULLY_CONNECTED_H */
