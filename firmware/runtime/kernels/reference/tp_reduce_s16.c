/* Reference MEAN over the folded shape of tp_reduce.h, int16 (16x8): the int8 kernel's int32 sum
 * and requantization, clamped to int16. */
#include "tp_reduce.h"

#include "tp_fixedpoint.h"

void tp_reduce_sum_s16(const tp_reduce_sum_params *params, const tp_reduce_dims *dims, const int16_t *input,
                       int16_t *output)
{
    const int32_t outer_step = dims->middle * dims->reduce_inner * dims->inner;
    for (int32_t o = 0; o < dims->outer; ++o) {
        for (int32_t m = 0; m < dims->middle; ++m) {
            for (int32_t i = 0; i < dims->inner; ++i) {
                const int16_t *set =
                    input + ((o * dims->reduce_outer * dims->middle + m) * dims->reduce_inner) * dims->inner + i;
                int32_t sum = params->sum_offset;
                for (int32_t r1 = 0; r1 < dims->reduce_outer; ++r1) {
                    const int16_t *row = set + r1 * outer_step;
                    for (int32_t r2 = 0; r2 < dims->reduce_inner; ++r2) {
                        sum += row[r2 * dims->inner];
                    }
                }
                const int32_t value = tp_requantize(sum, params->requant.multiplier, params->requant.shift) +
                                      params->output_offset;
                *output++ = (int16_t)tp_clamp(value, INT16_MIN, INT16_MAX);
            }
        }
    }
}
