/* Reference ARG_MAX and ARG_MIN along one axis, int8 in, int32 indices out. */
#include "tp_reduce.h"

static void arg_extreme(const tp_arg_dims *dims, const int8_t *input, int32_t *output, int32_t take_larger)
{
    for (int32_t o = 0; o < dims->outer; ++o) {
        const int8_t *block = input + o * dims->axis * dims->inner;
        for (int32_t i = 0; i < dims->inner; ++i) {
            int8_t best = block[i];
            int32_t best_index = 0;
            for (int32_t k = 1; k < dims->axis; ++k) {
                const int8_t value = block[k * dims->inner + i];
                /* Strict comparison: an equal value later on does not move the index. */
                if (take_larger ? value > best : value < best) {
                    best = value;
                    best_index = k;
                }
            }
            *output++ = best_index;
        }
    }
}

void tp_arg_max_s8(const tp_arg_dims *dims, const int8_t *input, int32_t *output)
{
    arg_extreme(dims, input, output, 1);
}

void tp_arg_min_s8(const tp_arg_dims *dims, const int8_t *input, int32_t *output)
{
    arg_extreme(dims, input, output, 0);
}
