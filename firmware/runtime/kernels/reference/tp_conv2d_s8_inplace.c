/* CONV_2D over its own input: the reference kernel, one output row at a time. */
#include "tp_conv_inplace.h"

typedef struct {
    const tp_per_channel_requant *quant;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int8_t *filter;
    const int32_t *bias;
} conv_op;

static void conv_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                     const int8_t *buffer, int8_t *dst)
{
    const conv_op *c = (const conv_op *)op;
    tp_conv2d_s8(row_params, c->quant, c->input_dims, buffer, c->filter_dims, c->filter, c->bias, one_row, dst);
}

void tp_conv2d_s8_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                          const tp_dims *input_dims, const tp_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias, const tp_dims *output_dims, const tp_inplace_rows *rows,
                          int8_t *buffer, int8_t *ring)
{
    const conv_op op = {quant, input_dims, filter_dims, filter, bias};
    tp_conv_rows_inplace(params, input_dims, filter_dims, output_dims, rows, buffer, ring, conv_row, &op);
}
