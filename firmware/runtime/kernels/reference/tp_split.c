/* Reference SPLIT / SPLIT_V / UNPACK, int8 and int16: the input's runs handed out in turn. */
#include "tp_data_movement.h"

#include <string.h>

void tp_split(const void *input, int32_t outer_size, const tp_split_output *outputs,
                 int32_t num_outputs)
{
    const uint8_t *in = (const uint8_t *)input;
    for (int32_t outer = 0; outer < outer_size; ++outer) {
        for (int32_t i = 0; i < num_outputs; ++i) {
            const int32_t size = outputs[i].copy_size;
            memcpy((uint8_t *)outputs[i].data + outer * size, in, (size_t)size);
            in += size;
        }
    }
}
