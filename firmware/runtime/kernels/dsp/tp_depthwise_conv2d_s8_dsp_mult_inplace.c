/* DEPTHWISE_CONV_2D with a depth multiplier above 1 over its own input: the DSP kernel, one
 * output row at a time, under the reference row schedule (tp_conv_rows_inplace.c). */
#include "tp_dsp_inplace.h"

typedef struct {
    const tp_depthwise_conv_params *params;
    const tp_per_channel_requant *quant;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int32_t *packed_filter;
    const int32_t *words;
    int8_t *scratch;
} dsp_dw_mult_op;

static void dsp_dw_mult_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                            const int8_t *buffer, int8_t *dst)
{
    const dsp_dw_mult_op *d = (const dsp_dw_mult_op *)op;
    tp_depthwise_conv_params params = *d->params;
    params.conv = *row_params;
    tp_depthwise_conv2d_s8_dsp_mult(&params, d->quant, d->input_dims, buffer, d->filter_dims, d->packed_filter,
                                    d->words, one_row, dst, d->scratch);
}

void tp_depthwise_conv2d_s8_dsp_mult_inplace(const tp_depthwise_conv_params *params,
                                             const tp_per_channel_requant *quant, const tp_dims *input_dims,
                                             const tp_dims *filter_dims, const int32_t *packed_filter,
                                             const int32_t *words, const tp_dims *output_dims,
                                             const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring,
                                             int8_t *scratch)
{
    const dsp_dw_mult_op op = {params, quant, input_dims, filter_dims, packed_filter, words, scratch};
    tp_conv_rows_inplace(&params->conv, input_dims, filter_dims, output_dims, rows, buffer, ring, dsp_dw_mult_row,
                         &op);
}
