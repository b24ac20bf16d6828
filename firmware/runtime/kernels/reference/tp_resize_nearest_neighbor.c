/* Reference RESIZE_NEAREST_NEIGHBOR, int8: each output pixel copies the input
 * pixel the code generator picked for its row and column. */
#include "tp_data_movement.h"

#include <string.h>

void tp_resize_nearest_neighbor_s8(const tp_resize_nearest_params *params, const int32_t *rows,
                                   const int32_t *cols, const int8_t *input, int8_t *output)
{
    const tp_dims *in = &params->input_dims;
    const int32_t depth = in->c;
    const int32_t batch_size = in->h * in->w * in->c;
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *batch = input + b * batch_size;
        for (int32_t y = 0; y < params->output_height; ++y) {
            const int8_t *row = batch + rows[y];
            for (int32_t x = 0; x < params->output_width; ++x) {
                memcpy(output, row + cols[x], (size_t)depth);
                output += depth;
            }
        }
    }
}
