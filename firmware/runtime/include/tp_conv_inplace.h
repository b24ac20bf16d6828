/* Convolutions that write their output over their own input (one arena buffer for both).
 *
 * Output rows are computed one at a time by the regular kernel into a small ring
 * of rows (the step's scratch) and copied into the shared buffer as soon as no
 * output row still to be computed reads the input rows that copy overwrites.
 * When the output is larger than the input the rows go bottom-up instead, so
 * the copies overwrite input rows only above the ones still needed. The code
 * generator sizes the ring with the same rule, so it never overflows.
 * Batch 1 only.
 */
#ifndef TP_CONV_INPLACE_H
#define TP_CONV_INPLACE_H

#include "tp_conv.h"

typedef struct {
    int32_t ring_rows; /* output rows the scratch ring holds */
    int32_t bottom_up; /* 1: last output row first (output larger than input) */
} tp_inplace_rows;

/* Computes one output row into dst (output_dims->w * output_dims->c bytes) from buffer: the
 * regular kernel called with row_params (the convolution's, top padding moved up by row *
 * stride, so that output row 0 of the call is the wanted row) and one_row (the output dims,
 * height 1). */
typedef void (*tp_conv_row_fn)(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                               const int8_t *buffer, int8_t *dst);

void tp_conv_rows_inplace(const tp_conv_params *conv, const tp_dims *input_dims, const tp_dims *filter_dims,
                          const tp_dims *output_dims, const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring,
                          tp_conv_row_fn compute_row, const void *op);

/* buffer holds the input on entry and the output on return. */
void tp_conv2d_s8_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                          const tp_dims *input_dims, const tp_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias, const tp_dims *output_dims, const tp_inplace_rows *rows,
                          int8_t *buffer, int8_t *ring);

void tp_depthwise_conv2d_s8_inplace(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                    const tp_dims *input_dims, const tp_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias, const tp_dims *output_dims, const tp_inplace_rows *rows,
                                    int8_t *buffer, int8_t *ring);

#endif /* TP_CONV_INPLACE_H */
