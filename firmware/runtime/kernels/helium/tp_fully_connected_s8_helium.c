/* FULLY_CONNECTED for Helium: the matrix kernel with the batch rows as its columns, two at a time. */
#include "tp_helium.h"

void tp_fully_connected_s8_helium(const tp_fc_params *params, int32_t batches, int32_t accum_depth,
                                  int32_t output_depth, const int8_t *input, const int8_t *packed_filter,
                                  const int32_t *words, int8_t *output)
{
    const tp_helium_output_stage stage = {words + TP_HELIUM_WORDS_HEADER, params->output_offset, params->activation,
                                          words[0]};
    for (int32_t b = 0; b < batches; b += 2) {
        const int8_t *x = input + b * accum_depth;
        tp_helium_gemm_s8(x, batches - b >= 2 ? x + accum_depth : NULL, accum_depth, packed_filter, output_depth,
                          &stage, output + b * output_depth, output + (b + 1) * output_depth);
    }
}
