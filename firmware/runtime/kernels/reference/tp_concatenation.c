/* Reference CONCATENATION, int8 and int16: a byte copy along any axis. */
#include "tp_concat_pad.h"

#include <string.h>

void tp_concatenation(const tp_concat_input *inputs, int32_t num_inputs, int32_t outer_size,
                         void *output)
{
    uint8_t *out = (uint8_t *)output;
    for (int32_t outer = 0; outer < outer_size; ++outer) {
        for (int32_t i = 0; i < num_inputs; ++i) {
            const int32_t size = inputs[i].copy_size;
            memcpy(out, (const uint8_t *)inputs[i].data + outer * size, (size_t)size);
            out += size;
        }
    }
}
