/* Spatial pooling over NHWC int8 tensors: windowed average and max. (MEAN over
 * any axes, the whole H x W plane included, is in tp_reduce.h.)
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

/* The int16 (16x8) forms: the same windows, sums and rounding. */
void tp_avg_pool_s16(const tp_pool_params *params, const tp_dims *input_dims, const int16_t *input,
                     const tp_dims *output_dims, int16_t *output);

void tp_max_pool_s16(const tp_pool_params *params, const tp_dims *input_dims, const int16_t *input,
                     const tp_dims *output_dims, int16_t *output);

#endif /* TP_POOLING_H */
