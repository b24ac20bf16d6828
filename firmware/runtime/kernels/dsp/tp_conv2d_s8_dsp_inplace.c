/* CONV_2D over its own input: the DSP kernel, one output row at a time, under the reference
 * row schedule (tp_conv_rows_inplace.c). */
#include "tp_dsp_inplace.h"

typedef struct {
    const tp_per_channel_requant *quant;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int32_t *packed_filter;
    const int32_t *words;
    int8_t *scratch;
} dsp_conv_op;

static void dsp_conv_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                         const int8_t *buffer, int8_t *dst)
{
    const dsp_conv_op *c = (const dsp_conv_op *)op;
    tp_conv2d_s8_dsp(row_params, c->quant, c->input_dims, buffer, c->filter_dims, c->packed_filter, c->words,
                     one_row, dst, c->scratch);
}

void tp_conv2d_s8_dsp_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                              const tp_dims *input_dims, const tp_dims *filter_dims, const int32_t *packed_filter,
                              const int32_t *words, const tp_dims *output_dims,
                              const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch)
{
    const dsp_conv_op op = {quant, input_dims, filter_dims, packed_filter, words, scratch};
    tp_conv_rows_inplace(params, input_dims, filter_dims, output_dims, rows, buffer, ring, dsp_conv_row, &op);
}
