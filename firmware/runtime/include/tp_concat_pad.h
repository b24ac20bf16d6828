/* Data movement over int8 and int16 tensors: CONCATENATION and PAD / PADV2.
 * The kernels move whole elements of any size: the code generator gives sizes
 * in bytes, or the element size. */
#ifndef TP_CONCAT_PAD_H
#define TP_CONCAT_PAD_H

#include "tp_types.h"

/* One input of a concatenation: its data and how many contiguous bytes it
 * contributes per outer step (its extent along the axis times the inner size,
 * times the element size). */
typedef struct {
    const void *data;
    int32_t copy_size;
} tp_concat_input;

/* Interleaves the inputs' blocks outer_size times. Bytes are copied as they
 * are: TFLite Micro does not rescale inputs whose quantization differs from the
 * output's (the converter inserts QUANTIZE operators instead; for int16 TFLM
 * checks only that every zero point is 0, and copies as well). */
void tp_concatenation(const tp_concat_input *inputs, int32_t num_inputs, int32_t outer_size,
                         void *output);

/* Elements added before and after each NHWC dimension, the fill value (an
 * int8 or int16 value) and the element size in bytes (1 or 2). */
typedef struct {
    tp_dims before;
    tp_dims after;
    int16_t pad_value;
    int32_t element_size;
} tp_pad_params;

void tp_pad(const tp_pad_params *params, const tp_dims *input_dims, const void *input,
               void *output);

#endif /* TP_CONCAT_PAD_H */
