/* tp_scalar_dw3x3_s1 and _s2: acc[p] += sum over the 3x3 taps w[3 * ky + kx] * q[ky * row_step +
 * kx + p * stride] for the four pixels p, stride 1 or 2 (tp_scalar.h). Armv6-M runs
 * tp_scalar_dw3x3_armv6m.S instead. */
#include "tp_scalar.h"

#if !(defined(__arm__) && defined(__ARM_ARCH_6M__))
static inline void window_3x3(const uint8_t *q, int32_t stride, const int8_t *w, int32_t row_step, uint32_t acc[4])
{
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t ky = 0; ky < 3; ++ky) {
        for (int32_t kx = 0; kx < 3; ++kx) {
            const int32_t x = *w++;
            a0 += (uint32_t)(q[kx] * x);
            a1 += (uint32_t)(q[kx + stride] * x);
            a2 += (uint32_t)(q[kx + 2 * stride] * x);
            a3 += (uint32_t)(q[kx + 3 * stride] * x);
        }
        q += row_step;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

void tp_scalar_dw3x3_s1(const uint8_t *q, const int8_t *w, int32_t row_step, uint32_t acc[4])
{
    window_3x3(q, 1, w, row_step, acc);
}

void tp_scalar_dw3x3_s2(const uint8_t *q, const int8_t *w, int32_t row_step, uint32_t acc[4])
{
    window_3x3(q, 2, w, row_step, acc);
}
#endif
