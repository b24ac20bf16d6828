#ifndef TP_LUT_H
#define TP_LUT_H

#include "tp_types.h"

/* Elementwise int8 function by table look-up: output[i] = table[(uint8_t)input[i]].
 * The generator fills the 256 entries with the reference's own integer
 * arithmetic for every input value (LOGISTIC, TANH, RSQRT). input may equal output. */
void tp_lut_s8(const int8_t *table, int32_t size, const int8_t *input, int8_t *output);

#endif /* TP_LUT_H */
