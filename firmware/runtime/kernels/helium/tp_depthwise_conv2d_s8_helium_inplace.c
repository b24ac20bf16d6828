/* DEPTHWISE_CONV_2D over its own input (tp_conv_inplace.h): the MVE kernel, one output row at a time. */
#include "tp_helium_dw.h"

typedef struct {
    const tp_depthwise_conv_params *params;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int8_t *filter;
    const int32_t *words;
} depthwise_op;

static void depthwise_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                          const int8_t *buffer, int8_t *dst)
{
    const depthwise_op *d = (const depthwise_op *)op;
    tp_depthwise_conv_params params = *d->params;
    params.conv = *row_params;
    tp_depthwise_conv2d_s8_helium(&params, d->input_dims, buffer, d->filter_dims, d->filter, d->words, one_row, dst);
}

void tp_depthwise_conv2d_s8_helium_inplace(const tp_depthwise_conv_params *params, const tp_dims *input_dims,
                                           const tp_dims *filter_dims, const int8_t *filter, const int32_t *words,
                                           const tp_dims *output_dims, const tp_inplace_rows *rows, int8_t *buffer,
                                           int8_t *ring)
{
    const depthwise_op op = {params, input_dims, filter_dims, filter, words};
    tp_conv_rows_inplace(&params->conv, input_dims, filter_dims, output_dims, rows, buffer, ring, depthwise_row, &op);
}
