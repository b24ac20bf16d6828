/* tp_scalar_dot4: acc[j] += sum_{i < k} s[i] * q[4 * i + j] for j < 4, one signed value against
 * four interleaved unsigned bytes (tp_scalar.h). Armv6-M runs tp_scalar_dot4_armv6m.S instead. */
#include "tp_scalar.h"

#if !(defined(__arm__) && defined(__ARM_ARCH_6M__))
void tp_scalar_dot4(const int8_t *s, const uint8_t *q, int32_t k, uint32_t acc[4])
{
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t i = 0; i < k; ++i) {
        const int32_t x = s[i];
        a0 += (uint32_t)(q[0] * x);
        a1 += (uint32_t)(q[1] * x);
        a2 += (uint32_t)(q[2] * x);
        a3 += (uint32_t)(q[3] * x);
        q += 4;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif
