/* DEPTHWISE_CONV_2D over its own input: the DSP kernel, one output row at a time, under the
 * reference row schedule (tp_conv_rows_inplace.c). */
#include "tp_dsp_inplace.h"

typedef struct {
    const tp_depthwise_conv_params *params;
    const tp_per_channel_requant *quant;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int32_t *packed_filter;
    const int32_t *channels;
    const tp_dims *output_dims;
} dsp_depthwise_op;

static void dsp_depthwise_row(const void *op, const int8_t *buffer, int32_t row, int8_t *dst)
{
    const dsp_depthwise_op *d = (const dsp_depthwise_op *)op;
    /* Moving the top padding up by row * stride makes output row 0 of this call be `row`. */
    tp_depthwise_conv_params params = *d->params;
    params.conv.padding.h -= row * params.conv.stride.h;
    tp_dims one_row = *d->output_dims;
    one_row.h = 1;
    tp_depthwise_conv2d_s8_dsp(&params, d->quant, d->input_dims, buffer, d->filter_dims, d->packed_filter, d->channels,
                               &one_row, dst);
}

void tp_depthwise_conv2d_s8_dsp_inplace(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                        const tp_dims *input_dims, const tp_dims *filter_dims,
                                        const int32_t *packed_filter, const int32_t *channels,
                                        const tp_dims *output_dims, const tp_inplace_rows *rows, int8_t *buffer,
                                        int8_t *ring)
{
    const dsp_depthwise_op op = {params, quant, input_dims, filter_dims, packed_filter, channels, output_dims};
    tp_conv_rows_inplace(&params->conv, input_dims, filter_dims, output_dims, rows, buffer, ring, dsp_depthwise_row,
                         &op);
}
