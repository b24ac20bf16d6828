/* Reference SPACE_TO_BATCH_ND, int8: the padded rows and columns dealt out
 * to the batches, block position by block position. */
#include "tp_data_movement.h"

#include <string.h>

void tp_space_to_batch_nd_s8(const tp_space_to_batch_params *params, const int8_t *input,
                             int8_t *output)
{
    const tp_dims *in = &params->input_dims;
    const tp_dims *out = &params->output_dims;
    const int32_t depth = in->c;
    for (int32_t out_b = 0; out_b < out->n; ++out_b) {
        /* Output batch out_b takes the pixels at this offset within each block. */
        const int32_t in_b = out_b % in->n;
        const int32_t block_index = out_b / in->n;
        const int32_t shift_h = block_index / params->block.w - params->pad.h;
        const int32_t shift_w = block_index % params->block.w - params->pad.w;
        for (int32_t out_h = 0; out_h < out->h; ++out_h) {
            const int32_t in_h = out_h * params->block.h + shift_h;
            for (int32_t out_w = 0; out_w < out->w; ++out_w) {
                const int32_t in_w = out_w * params->block.w + shift_w;
                if (in_h < 0 || in_h >= in->h || in_w < 0 || in_w >= in->w) {
                    memset(output, params->pad_value, (size_t)depth);
                } else {
                    memcpy(output, input + ((in_b * in->h + in_h) * in->w + in_w) * depth, (size_t)depth);
                }
                output += depth;
            }
        }
    }
}
