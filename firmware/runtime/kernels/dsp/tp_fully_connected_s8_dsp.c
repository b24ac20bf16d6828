/* FULLY_CONNECTED for the DSP extension: the batch rows are the matrix kernel's columns. */
#include "tp_dsp.h"

void tp_fully_connected_s8_dsp(const tp_fc_params *params, const tp_per_channel_requant *quant,
                               int32_t batches, int32_t accum_depth, int32_t output_depth,
                               const int8_t *input, const int8_t *filter, const int32_t *effective_bias,
                               int8_t *output)
{
    const tp_dsp_output_stage stage = {effective_bias, quant->multiplier, quant->shift, params->per_channel,
                                       params->output_offset, params->activation};
    for (int32_t b = 0; b < batches; b += 2) {
        const int32_t count = batches - b >= 2 ? 2 : 1;
        tp_dsp_gemm_s8(input + b * accum_depth, count, filter, output_depth, accum_depth, &stage,
                       output + b * output_depth, output + (b + count - 1) * output_depth);
    }
}
