/* Reference QUANTIZE float32 -> int8: the float quotient rounded as roundf does. */
#include "tp_quantize.h"

static int32_t round_to_int8(float x, int32_t zero_point)
{
    /* Beyond +-256 every zero point saturates, so the int conversion below never
     * overflows. NaN (undefined in TFLite) goes to the minimum. */
    if (!(x > -256.0f)) {
        return INT8_MIN;
    }
    if (!(x < 256.0f)) {
        return INT8_MAX;
    }
    const float magnitude = x < 0.0f ? -x : x;
    int32_t rounded = (int32_t)magnitude;
    if (magnitude - (float)rounded >= 0.5f) { /* exact: the fraction of a float below 2^23 */
        rounded += 1;
    }
    const int32_t q = (x < 0.0f ? -rounded : rounded) + zero_point;
    return q < INT8_MIN ? INT8_MIN : (q > INT8_MAX ? INT8_MAX : q);
}

void tp_quantize_f32_s8(float scale, int32_t zero_point, int32_t size, const float *input,
                        int8_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int8_t)round_to_int8(input[i] / scale, zero_point);
    }
}
