/* Spatial pooling over NHWC int8 tensors: windowed average and max, and the
 * mean over the whole H x W plane (TFLite MEAN over axes 1 and 2).
 */
#ifndef TP_POOLING_H
#define TP_POOLING_H

#include "tp_types.h"

typedef struct {
    tp_hw stride;
    tp_hw filter;
    tp_hw padding; /* rows/columns of implicit padding before the first input row/column */
    tp_activation activation;
} tp_pool_params;

/* The in-bounds part [*start, *end) of output position `out`'s window along one axis. */
static inline void tp_pool_window(int32_t out, int32_t stride, int32_t padding, int32_t filter, int32_t size,
                                  int32_t *start, int32_t *end)
{
    const int32_t first = out * stride - padding;
    *start = first > 0 ? first : 0;
    *end = first + filter < size ? first + filter : size;
}

/* Average of the window's in-bounds elements only (padding is not counted),
 * rounded half away from zero. Input and output share one quantization. */
void tp_avg_pool_s8(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                    const tp_dims *output_dims, int8_t *output);

/* Maximum of the window's in-bounds elements. */
void tp_max_pool_s8(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                    const tp_dims *output_dims, int8_t *output);

typedef struct {
    int32_t sum_offset;   /* minus input zero point times the H*W elements summed */
    tp_requant requant;   /* input_scale / output_scale with 1/(H*W) folded in */
    int32_t output_offset; /* the output zero point */
} tp_mean_params;

/* output[n][c] = requant(sum_{h,w} input[n][h][w][c] + sum_offset) + output_offset. */
void tp_mean_hw_s8(const tp_mean_params *params, const tp_dims *input_dims, const int8_t *input,
                   int8_t *output);

#endif /* TP_POOLING_H */
