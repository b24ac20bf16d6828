/* FULLY_CONNECTED for cores without the DSP extension (tp_scalar.h): per block of four rows,
 * one pass over the input, each input loaded once for the four rows' weights (stored as
 * w + 128: unsigned bytes load in one instruction); the last output_depth % 4 rows one by one. */
#include "tp_scalar.h"

void tp_fully_connected_s8_scalar(const tp_fc_params *params, const tp_per_channel_requant *quant,
                                  int32_t batches, int32_t accum_depth, int32_t output_depth,
                                  const int8_t *input, const uint8_t *packed_filter, const int32_t *bias,
                                  const uint8_t *short_form, int8_t *output)
{
    const int32_t blocked = output_depth & ~3;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        /* sum(x * (w + 128)) = sum(x * w) + 128 * sum(x) */
        uint32_t sum = 0;
        for (int32_t i = 0; i < accum_depth; ++i) {
            sum += (uint32_t)x[i];
        }
        const uint32_t start = 0u - (sum << 7);
        const uint8_t *w = packed_filter;
        for (int32_t r = 0; r < output_depth; r += 4) {
            const int32_t rows = r < blocked ? 4 : output_depth - r;
            uint32_t acc[4] = {start, start, start, start};
            if (r < blocked) {
                tp_scalar_dot4(x, w, accum_depth, acc);
                w += 4 * accum_depth;
            } else {
                for (int32_t j = 0; j < rows; ++j) {
                    for (int32_t i = 0; i < accum_depth; ++i) {
                        acc[j] += (uint32_t)(x[i] * w[i]);
                    }
                    w += accum_depth;
                }
            }
            for (int32_t j = 0; j < rows; ++j) {
                const int32_t c = params->per_channel ? r + j : 0;
                acc[j] += (uint32_t)bias[r + j];
                tp_scalar_store(&acc[j], 1, short_form[r + j], quant->multiplier[c],
                                quant->shift[c], params->output_offset, &params->activation, output + r + j, 1);
            }
        }
        output += output_depth;
    }
}
