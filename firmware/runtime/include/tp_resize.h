/* RESIZE_BILINEAR over NHWC int8 tensors.
 *
 * TFLite Micro's integer kernel works in 1/1024ths of an input pixel: output coordinate o
 * sits at p = o * scale (half_pixel_centers: o * scale + scale / 2 - 512), scale the
 * input/output size ratio in 1/1024ths as TFLM rounds it, between input coordinates
 * lower = max(p / 1024, 0) and upper = min(ceil(p / 1024), size - 1), with upper's weight
 * w = p - 1024 * lower. The generator computes those per output row and column; the kernel
 * blends the four neighbours with weights summing to 2^20 and rounds half away from zero.
 * Input and output share one quantization: the values are blended as they are.
 */
#ifndef TP_RESIZE_H
#define TP_RESIZE_H

#include "tp_types.h"

/* One axis of the resize: per output coordinate, the two input coordinates and upper's weight
 * in 1/1024ths (-512..1023; negative only where lower == upper, at the first half pixel). */
typedef struct {
    const int16_t *lower;
    const int16_t *upper;
    const int16_t *weight;
} tp_resize_axis;

/* input_dims->n == output_dims->n and input_dims->c == output_dims->c. */
void tp_resize_bilinear_s8(const tp_dims *input_dims, const int8_t *input, const tp_resize_axis *rows,
                           const tp_resize_axis *cols, const tp_dims *output_dims, int8_t *output);

#endif /* TP_RESIZE_H */
