/* Reference SPLIT / SPLIT_V / UNPACK, int8: the input's runs handed out in turn. */
#include "tp_data_movement.h"

#include <string.h>

void tp_split_s8(const int8_t *input, int32_t outer_size, const tp_split_output *outputs,
                 int32_t num_outputs)
{
    for (int32_t outer = 0; outer < outer_size; ++outer) {
        for (int32_t i = 0; i < num_outputs; ++i) {
            const int32_t size = outputs[i].copy_size;
            memcpy(outputs[i].data + outer * size, input, (size_t)size);
            input += size;
        }
    }
}
