/* Reductions of int8 tensors of any rank: REDUCE_MAX, REDUCE_MIN, SUM and MEAN
 * over any set of axes, and ARG_MAX / ARG_MIN along one axis.
 *
 * The generator folds the input shape ahead of time: size-1 axes dropped, adjacent
 * axes that are both reduced (or both kept) merged. What is left alternates kept and
 * reduced runs and, for any input of rank up to 4 (or 5 with a batch of 1), fits
 * [outer, reduce_outer, middle, reduce_inner, inner] with unused runs 1.
 */
#ifndef TP_REDUCE_H
#define TP_REDUCE_H

#include "tp_types.h"

/* The input as [outer][reduce_outer][middle][reduce_inner][inner], reduced over
 * reduce_outer and reduce_inner: the output is [outer][middle][inner]. */
typedef struct {
    int32_t outer;
    int32_t reduce_outer;
    int32_t middle;
    int32_t reduce_inner;
    int32_t inner;
} tp_reduce_dims;

/* The largest (smallest) code of each reduced set. Input and output share one
 * quantization (TFLite requires it), so no rescale. */
void tp_reduce_max_s8(const tp_reduce_dims *dims, const int8_t *input, int8_t *output);

void tp_reduce_min_s8(const tp_reduce_dims *dims, const int8_t *input, int8_t *output);

/* SUM and MEAN: output = requant(sum of the set + sum_offset) + output_offset, clamped
 * to int8. For SUM the rescale is input_scale / output_scale; for MEAN it also has
 * 1 / (elements per set) folded in, as TFLite folds it. */
typedef struct {
    int32_t sum_offset;    /* minus the input zero point times the elements per set */
    tp_requant requant;
    int32_t output_offset; /* the output zero point */
} tp_reduce_sum_params;

void tp_reduce_sum_s8(const tp_reduce_sum_params *params, const tp_reduce_dims *dims, const int8_t *input,
                      int8_t *output);

/* The same for int16 (16x8 MEAN): an int32 sum, clamped to int16. */
void tp_reduce_sum_s16(const tp_reduce_sum_params *params, const tp_reduce_dims *dims, const int16_t *input,
                       int16_t *output);

/* ARG_MAX and ARG_MIN along one axis: the input as [outer][axis][inner], the output
 * [outer][inner] int32 indices along the axis; the first of equal extremes wins. */
typedef struct {
    int32_t outer;
    int32_t axis;
    int32_t inner;
} tp_arg_dims;

void tp_arg_max_s8(const tp_arg_dims *dims, const int8_t *input, int32_t *output);

void tp_arg_min_s8(const tp_arg_dims *dims, const int8_t *input, int32_t *output);

#endif /* TP_REDUCE_H */
