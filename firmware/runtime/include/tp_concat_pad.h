/* Data movement over int8 tensors: CONCATENATION and PAD / PADV2. */
#ifndef TP_CONCAT_PAD_H
#define TP_CONCAT_PAD_H

#include "tp_types.h"

/* One input of a concatenation: its data and how many contiguous bytes it
 * contributes per outer step (its extent along the axis times the inner size). */
typedef struct {
    const int8_t *data;
    int32_t copy_size;
} tp_concat_input;

/* Interleaves the inputs' blocks outer_size times. Bytes are copied as they
 * are: TFLite Micro does not rescale inputs whose quantization differs from the
 * output's (the converter inserts QUANTIZE operators instead). */
void tp_concatenation_s8(const tp_concat_input *inputs, int32_t num_inputs, int32_t outer_size,
                         int8_t *output);

/* Elements added before and after each NHWC dimension, and the fill value. */
typedef struct {
    tp_dims before;
    tp_dims after;
    int8_t pad_value;
} tp_pad_params;

void tp_pad_s8(const tp_pad_params *params, const tp_dims *input_dims, const int8_t *input,
               int8_t *output);

#endif /* TP_CONCAT_PAD_H */
