/* Reference QUANTIZE float32 -> int8 and float32 -> int16: the float quotient rounded as
 * roundf does. */
#include "tp_quantize.h"

/* round(x) + zero_point saturated to [min, max], where max + 1 is a power of two below 2^22. */
static int32_t round_saturated(float x, int32_t zero_point, int32_t min, int32_t max)
{
    /* Beyond +-2 * (max + 1) every zero point of the type saturates, so the int
     * conversion below never overflows. NaN (undefined in TFLite) goes to the minimum. */
    const float limit = 2.0f * (float)(max + 1);
    if (!(x > -limit)) {
        return min;
    }
    if (!(x < limit)) {
        return max;
    }
    const float magnitude = x < 0.0f ? -x : x;
    int32_t rounded = (int32_t)magnitude;
    if (magnitude - (float)rounded >= 0.5f) { /* exact: the fraction of a float below 2^23 */
        rounded += 1;
    }
    const int32_t q = (x < 0.0f ? -rounded : rounded) + zero_point;
    return q < min ? min : (q > max ? max : q);
}

void tp_quantize_f32_s8(float scale, int32_t zero_point, int32_t size, const float *input,
                        int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)round_saturated(input[i] / scale, zero_point, INT8_MIN, INT8_MAX);
    }
}

void tp_quantize_f32_s16(float scale, int32_t zero_point, int32_t size, const float *input,
                         int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)round_saturated(input[i] / scale, zero_point, INT16_MIN, INT16_MAX);
    }
}
