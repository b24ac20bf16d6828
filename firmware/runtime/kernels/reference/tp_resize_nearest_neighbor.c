/* Reference RESIZE_NEAREST_NEIGHBOR, int8 and int16: each output pixel copies the
 * input pixel the code generator picked for its row and column. */
#include "tp_data_movement.h"

#include <string.h>

void tp_resize_nearest_neighbor(const tp_resize_nearest_params *params, const int32_t *rows,
                                   const int32_t *cols, const void *input, void *output)
{
    const tp_dims *in = &params->input_dims;
    const int32_t element_size = params->element_size;
    const int32_t depth_bytes = in->c * element_size;
    const int32_t batch_size = in->h * in->w * in->c;
    const uint8_t *source = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    for (int32_t b = 0; b < in->n; ++b) {
        const uint8_t *batch = source + b * batch_size * element_size;
        for (int32_t y = 0; y < params->output_height; ++y) {
            const uint8_t *row = batch + rows[y] * element_size;
            for (int32_t x = 0; x < params->output_width; ++x) {
                memcpy(out, row + cols[x] * element_size, (size_t)depth_bytes);
                out += depth_bytes;
            }
        }
    }
}
