/* Reference BATCH_TO_SPACE_ND, int8: the batches interleaved back into the
 * rows and columns, cropped. */
#include "tp_data_movement.h"

#include <string.h>

void tp_batch_to_space_nd_s8(const tp_batch_to_space_params *params, const int8_t *input,
                             int8_t *output)
{
    const tp_dims *in = &params->input_dims;
    const tp_dims *out = &params->output_dims;
    const int32_t depth = in->c;
    for (int32_t in_b = 0; in_b < in->n; ++in_b) {
        /* Input batch in_b holds the output pixels at this offset within each block. */
        const int32_t out_b = in_b % out->n;
        const int32_t block_index = in_b / out->n;
        const int32_t shift_h = block_index / params->block.w - params->crop.h;
        const int32_t shift_w = block_index % params->block.w - params->crop.w;
        for (int32_t in_h = 0; in_h < in->h; ++in_h) {
            const int32_t out_h = in_h * params->block.h + shift_h;
            if (out_h < 0 || out_h >= out->h) {
                continue;
            }
            for (int32_t in_w = 0; in_w < in->w; ++in_w) {
                const int32_t out_w = in_w * params->block.w + shift_w;
                if (out_w < 0 || out_w >= out->w) {
                    continue;
                }
                memcpy(output + ((out_b * out->h + out_h) * out->w + out_w) * depth,
                       input + ((in_b * in->h + in_h) * in->w + in_w) * depth, (size_t)depth);
            }
        }
    }
}
