/* Reference REDUCE_MAX, REDUCE_MIN, SUM and MEAN over the folded shape of
 * tp_reduce.h, int8. Each output element is reduced over its own set in turn, so
 * no scratch accumulator is needed; integer sums do not depend on the order. */
#include "tp_reduce.h"

#include "tp_fixedpoint.h"

/* Start of output element (o, m, i)'s set, and the steps between its members. */
static const int8_t *set_start(const tp_reduce_dims *dims, const int8_t *input, int32_t o, int32_t m, int32_t i)
{
    return input + ((o * dims->reduce_outer * dims->middle + m) * dims->reduce_inner) * dims->inner + i;
}

static void reduce_extreme(const tp_reduce_dims *dims, const int8_t *input, int8_t *output, int32_t take_larger)
{
    const int32_t outer_step = dims->middle * dims->reduce_inner * dims->inner;
    for (int32_t o = 0; o < dims->outer; ++o) {
        for (int32_t m = 0; m < dims->middle; ++m) {
            for (int32_t i = 0; i < dims->inner; ++i) {
                const int8_t *set = set_start(dims, input, o, m, i);
                int32_t best = take_larger ? INT8_MIN : INT8_MAX;
                for (int32_t r1 = 0; r1 < dims->reduce_outer; ++r1) {
                    const int8_t *row = set + r1 * outer_step;
                    for (int32_t r2 = 0; r2 < dims->reduce_inner; ++r2) {
                        const int32_t value = row[r2 * dims->inner];
                        best = take_larger ? TP_MAX(best, value) : TP_MIN(best, value);
                    }
                }
                *output++ = (int8_t)best;
            }
        }
    }
}

void tp_reduce_max_s8(const tp_reduce_dims *dims, const int8_t *input, int8_t *output)
{
    reduce_extreme(dims, input, output, 1);
}

void tp_reduce_min_s8(const tp_reduce_dims *dims, const int8_t *input, int8_t *output)
{
    reduce_extreme(dims, input, output, 0);
}

void tp_reduce_sum_s8(const tp_reduce_sum_params *params, const tp_reduce_dims *dims, const int8_t *input,
                      int8_t *output)
{
    const int32_t outer_step = dims->middle * dims->reduce_inner * dims->inner;
    for (int32_t o = 0; o < dims->outer; ++o) {
        for (int32_t m = 0; m < dims->middle; ++m) {
            for (int32_t i = 0; i < dims->inner; ++i) {
                const int8_t *set = set_start(dims, input, o, m, i);
                int32_t sum = params->sum_offset;
                for (int32_t r1 = 0; r1 < dims->reduce_outer; ++r1) {
                    const int8_t *row = set + r1 * outer_step;
                    for (int32_t r2 = 0; r2 < dims->reduce_inner; ++r2) {
                        sum += row[r2 * dims->inner];
                    }
                }
                const int32_t value = tp_requantize(sum, params->requant.multiplier, params->requant.shift) +
                                      params->output_offset;
                *output++ = (int8_t)tp_clamp(value, INT8_MIN, INT8_MAX);
            }
        }
    }
}
