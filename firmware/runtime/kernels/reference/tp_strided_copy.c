/* Reference strided copy, int8: TRANSPOSE, STRIDED_SLICE, SLICE, DEPTH_TO_SPACE
 * and SPACE_TO_DEPTH as one walk over an affine view of the input. */
#include "tp_data_movement.h"

#include <string.h>

void tp_strided_copy_s8(const tp_strided_copy_params *params, const int8_t *input, int8_t *output)
{
    const int32_t *count = params->count;
    const int32_t *step = params->step;
    const int32_t inner = count[5];
    /* Offsets stay integers until the read: a negative step would move a
     * pointer out of the input between rows. */
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
                            memcpy(output, input + o4, (size_t)inner);
                            output += inner;
                        } else {
                            int32_t o5 = o4;
                            for (int32_t i5 = 0; i5 < inner; ++i5, o5 += step[5]) {
                                *output++ = input[o5];
                            }
                        }
                    }
                }
            }
        }
    }
}
