/* Data movement over int8 tensors (and int16 ones, where TFLite Micro has an
 * int16 kernel): TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK,
 * GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH, RESIZE_NEAREST_NEIGHBOR,
 * BATCH_TO_SPACE_ND and SPACE_TO_BATCH_ND (PACK is tp_concatenation, see
 * tp_concat_pad.h).
 *
 * Every kernel copies values as they are, like TFLite Micro's reference
 * kernels, which neither rescale nor compare the input's and the output's
 * quantization (the converter gives them the same). Shapes, permutations,
 * slice bounds, indices and block sizes are constants of the model, resolved
 * by the code generator into the params below. The strided copy, split and
 * nearest-neighbor kernels take elements of 1 or 2 bytes (an element size in
 * their params, or sizes in bytes).
 */
#ifndef TP_DATA_MOVEMENT_H
#define TP_DATA_MOVEMENT_H

#include "tp_types.h"

/* Dimensions of a strided copy (after the code generator merged what it could). */
#define TP_STRIDED_COPY_DIMS 6

/* A view of the input walked in output order: output element (i0, ..., i5),
 * row-major over `count`, is input[offset + i0 * step[0] + ... + i5 * step[5]].
 * Steps are in elements and may be negative or zero; unused leading dimensions
 * have count 1. Elements are element_size bytes (1 or 2).
 *
 * TRANSPOSE (steps: the input strides in permuted order), STRIDED_SLICE and
 * SLICE (offset: the first element, steps: stride times input stride),
 * DEPTH_TO_SPACE and SPACE_TO_DEPTH (six-dimensional views of the block
 * rearrangement) are all such views. */
typedef struct {
    int32_t offset;
    int32_t count[TP_STRIDED_COPY_DIMS];
    int32_t step[TP_STRIDED_COPY_DIMS];
    int32_t element_size;
} tp_strided_copy_params;

void tp_strided_copy(const tp_strided_copy_params *params, const void *input, void *output);

/* One output of a split: its data and how many contiguous bytes it takes per
 * outer step (its extent along the axis times the inner size, times the
 * element size). */
typedef struct {
    void *data;
    int32_t copy_size;
} tp_split_output;

/* SPLIT, SPLIT_V and UNPACK: the input is outer_size runs of the outputs'
 * blocks, one after the other (the inverse of tp_concatenation). */
void tp_split(const void *input, int32_t outer_size, const tp_split_output *outputs,
                 int32_t num_outputs);

/* GATHER, with the input seen as [batch, outer, axis, inner] and the indices
 * as [batch, coords]: output [batch, outer, coords, inner]. Indices are
 * checked by the code generator to lie in [0, axis_size). */
typedef struct {
    int32_t batch_size;
    int32_t outer_size;
    int32_t axis_size;
    int32_t coord_size;
    int32_t inner_size;
} tp_gather_params;

void tp_gather_s8(const tp_gather_params *params, const int32_t *coords, const int8_t *input,
                  int8_t *output);

/* RESIZE_NEAREST_NEIGHBOR on NHWC: output row y and column x copy the input
 * pixel at rows[y] + cols[x] (element offsets within one batch: the input row
 * times width times channels, the input column times channels), chosen by the
 * code generator with TFLite's float arithmetic (align_corners,
 * half_pixel_centers). Elements are element_size bytes (1 or 2). */
typedef struct {
    tp_dims input_dims;
    int32_t output_height;
    int32_t output_width;
    int32_t element_size;
} tp_resize_nearest_params;

void tp_resize_nearest_neighbor(const tp_resize_nearest_params *params, const int32_t *rows,
                                   const int32_t *cols, const void *input, void *output);

/* BATCH_TO_SPACE_ND on NHWC (a 3-D NHC tensor is N, H, 1, C with a block width
 * of 1): input batch b moves to output batch b % out.n at block position
 * b / out.n, and the output starts `crop` rows and columns into the result. */
typedef struct {
    tp_dims input_dims;
    tp_dims output_dims;
    tp_hw block;
    tp_hw crop;  /* crops before (top, left); the ones after only shorten the output */
} tp_batch_to_space_params;

void tp_batch_to_space_nd_s8(const tp_batch_to_space_params *params, const int8_t *input,
                             int8_t *output);

/* SPACE_TO_BATCH_ND on NHWC (NHC as N, H, 1, C): the inverse, with `pad` rows
 * and columns before the input (and as many after as the output needs) filled
 * with pad_value. */
typedef struct {
    tp_dims input_dims;
    tp_dims output_dims;
    tp_hw block;
    tp_hw pad;  /* paddings before (top, left) */
    int8_t pad_value;
} tp_space_to_batch_params;

void tp_space_to_batch_nd_s8(const tp_space_to_batch_params *params, const int8_t *input,
                             int8_t *output);

#endif /* TP_DATA_MOVEMENT_H */
