/* ADD or SUB of two same-shape int8 tensors on MVE (tp_helium_elementwise.h): four elements per
 * vector, each input's rescaling a VLDRW gather from its table, the sum requantized as
 * tp_requantize_smaller_than_one (VQRDMULH, then the rounding divide of tp_helium_dw_requantize:
 * VRSHL of x - 1 for negative x), offset and clamped. */
#include <arm_mve.h>

#include "tp_helium_elementwise.h"

/* The output's requantization, offset and clamp, in registers: the int8 stores could alias
 * the params struct, which would have it reloaded every step. */
typedef struct {
    int32_t multiplier, right, offset;
    int32x4_t lo, hi;
} add_output;

/* Four elements; a tail (fewer than four left) under predicate p. */
__attribute__((always_inline)) static inline void add4(const add_output *o, const uint32_t *scaled1,
                                                       const uint32_t *scaled2, const int8_t *input1,
                                                       const int8_t *input2, int8_t *output, int rounds,
                                                       mve_pred16_t p, int tail)
{
    const uint32x4_t a = tail ? vldrbq_z_u32((const uint8_t *)input1, p) : vldrbq_u32((const uint8_t *)input1);
    const uint32x4_t b = tail ? vldrbq_z_u32((const uint8_t *)input2, p) : vldrbq_u32((const uint8_t *)input2);
    /* Inactive lanes hold byte 0: an index inside the tables. */
    const int32x4_t sum = vaddq_s32(vreinterpretq_s32_u32(vldrwq_gather_shifted_offset_u32(scaled1, a)),
                                    vreinterpretq_s32_u32(vldrwq_gather_shifted_offset_u32(scaled2, b)));
    int32x4_t value = vqrdmulhq_n_s32(sum, o->multiplier);
    if (rounds) { /* right shift 0 is no divide at all */
        value = vrshlq_n_s32(vqaddq_s32(value, vshrq_n_s32(value, 31)), -o->right);
    }
    value = vminq_s32(vmaxq_s32(vaddq_n_s32(value, o->offset), o->lo), o->hi);
    if (tail) {
        vstrbq_p_s32(output, value, p);
    } else {
        vstrbq_s32(output, value);
    }
}

__attribute__((always_inline)) static inline void add_all(const add_output *o, const int32_t *scaled, int32_t count,
                                                          const int8_t *input1, const int8_t *input2, int8_t *output,
                                                          int rounds)
{
    const uint32_t *scaled1 = (const uint32_t *)scaled, *scaled2 = (const uint32_t *)scaled + 256;
    for (; count >= 4; count -= 4, input1 += 4, input2 += 4, output += 4) {
        add4(o, scaled1, scaled2, input1, input2, output, rounds, 0, 0);
    }
    if (count > 0) {
        add4(o, scaled1, scaled2, input1, input2, output, rounds, vctp32q((uint32_t)count), 1);
    }
}

void tp_add_s8_helium(const tp_add_params *params, const int32_t *scaled, int32_t count, const int8_t *input1,
                      const int8_t *input2, int8_t *output)
{
    const add_output o = {params->output.multiplier, -params->output.shift, params->output_offset,
                          vdupq_n_s32(params->activation.min), vdupq_n_s32(params->activation.max)};
    if (o.right) {
        add_all(&o, scaled, count, input1, input2, output, 1);
    } else {
        add_all(&o, scaled, count, input1, input2, output, 0);
    }
}
