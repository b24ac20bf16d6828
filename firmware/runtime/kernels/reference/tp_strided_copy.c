/* Reference strided copy, int8 and int16: TRANSPOSE, STRIDED_SLICE, SLICE,
 * DEPTH_TO_SPACE and SPACE_TO_DEPTH as one walk over an affine view of the input. */
#include "tp_data_movement.h"

#include <string.h>

void tp_strided_copy(const tp_strided_copy_params *params, const void *input, void *output)
{
    const int32_t *count = params->count;
    const int32_t *step = params->step;
    const int32_t inner = count[5];
    const int32_t element_size = params->element_size;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    /* Offsets stay integers (in elements) until the read: a negative step would
     * move a pointer out of the input between rows. */
    int32_t o0 = params->offset;
    for (int32_t i0 = 0; i0 < count[0]; ++i0, o0 += step[0]) {
        int32_t o1 = o0;
        for (int32_t i1 = 0; i1 < count[1]; ++i1, o1 += step[1]) {
            int32_t o2 = o1;
            for (int32_t i2 = 0; i2 < count[2]; ++i2, o2 += step[2]) {
                int32_t o3 = o2;
                for (int32_t i3 = 0; i3 < count[3]; ++i3, o3 += step[3]) {
                    int32_t o4 = o3;
                    for (int32_t i4 = 0; i4 < count[4]; ++i4, o4 += step[4]) {
                        if (step[5] == 1) {
                            memcpy(out, in + o4 * element_size, (size_t)(inner * element_size));
                            out += inner * element_size;
                        } else if (element_size == 1) {
                            int32_t o5 = o4;
                            for (int32_t i5 = 0; i5 < inner; ++i5, o5 += step[5]) {
                                *out++ = in[o5];
                            }
                        } else {
                            int32_t o5 = o4;
                            for (int32_t i5 = 0; i5 < inner; ++i5, o5 += step[5]) {
                                memcpy(out, in + o5 * 2, 2);
                                out += 2;
                            }
                        }
                    }
                }
            }
        }
    }
}
