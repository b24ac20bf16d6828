/* DEPTHWISE_CONV_2D on planes over its own input, for depth multipliers above 1 (whose outputs
 * outgrow the input pixels they replace): the DSP kernel one output row at a time, under the
 * reference row schedule (tp_conv_rows_inplace.c). */
#include "tp_dsp_inplace.h"

typedef struct {
    const tp_depthwise_conv_params *params;
    const tp_per_channel_requant *quant;
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int32_t *packed_filter;
    const int32_t *channels;
    const tp_dsp_dw_layout *layout;
    int8_t *scratch;
} dsp_dw_planes_op;

static void dsp_dw_planes_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                              const int8_t *buffer, int8_t *dst)
{
    const dsp_dw_planes_op *d = (const dsp_dw_planes_op *)op;
    tp_depthwise_conv_params params = *d->params;
    params.conv = *row_params;
    tp_depthwise_conv2d_s8_dsp(&params, d->quant, d->input_dims, buffer, d->filter_dims, d->packed_filter,
                               d->channels, one_row, dst, d->layout, d->scratch);
}

void tp_depthwise_conv2d_s8_dsp_inplace(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                        const tp_dims *input_dims, const tp_dims *filter_dims,
                                        const int32_t *packed_filter, const int32_t *channels,
                                        const tp_dims *output_dims, const tp_dsp_dw_layout *layout,
                                        const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch)
{
    const dsp_dw_planes_op op = {params, quant, input_dims, filter_dims, packed_filter, channels, layout, scratch};
    tp_conv_rows_inplace(&params->conv, input_dims, filter_dims, output_dims, rows, buffer, ring, dsp_dw_planes_row,
                         &op);
}
