/* Reference GATHER, int8: rows of the input picked by constant indices. */
#include "tp_data_movement.h"

#include <string.h>

void tp_gather_s8(const tp_gather_params *params, const int32_t *coords, const int8_t *input,
                  int8_t *output)
{
    const int32_t inner = params->inner_size;
    for (int32_t batch = 0; batch < params->batch_size; ++batch) {
        const int32_t *batch_coords = coords + batch * params->coord_size;
        for (int32_t outer = 0; outer < params->outer_size; ++outer) {
            const int8_t *block = input + (batch * params->outer_size + outer) * params->axis_size * inner;
            for (int32_t c = 0; c < params->coord_size; ++c) {
                memcpy(output, block + batch_coords[c] * inner, (size_t)inner);
                output += inner;
            }
        }
    }
}
