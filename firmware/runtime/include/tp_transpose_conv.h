/* TRANSPOSE_CONV over NHWC int8 tensors (the gradient of a strided convolution,
 * Keras Conv2DTranspose).
 *
 * Input pixel (y, x) scatters filter tap (fy, fx) onto output pixel
 * (y * stride.h - padding.h + fy, x * stride.w - padding.w + fx); taps landing
 * outside the output are dropped. TFLite Micro's reference kernel does exactly
 * that into an int32 scratch of the whole output. This kernel gathers instead:
 * each output pixel sums the taps that land on it, then requantizes. The sum
 * has the same terms, so the same int32 value (wrapping arithmetic is
 * order-free), and no scratch buffer is needed.
 *
 * Filters are symmetric int8 (zero point 0) and every output channel has its
 * own requant entry; per-tensor models carry the one entry repeated.
 */
#ifndef TP_TRANSPOSE_CONV_H
#define TP_TRANSPOSE_CONV_H

#include "tp_conv.h"

/* params: tp_conv_params with dilation {1, 1} (transposed convolutions have none); padding
 * is the top/left padding TFLite derives from the output size (see the lowering).
 * filter is [out_c][kh][kw][in_c]; bias (one per output channel) may be NULL. */
void tp_transpose_conv2d_s8(const tp_conv_params *params, const tp_per_channel_requant *quant,
                            const tp_dims *input_dims, const int8_t *input,
                            const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                            const tp_dims *output_dims, int8_t *output);

/* 16x8: int16 activations (zero points 0), int8 filter, int64 bias (may be NULL; a model's int16
 * bias is widened by the generator), an int64 accumulator; params' offsets are unused. */
void tp_transpose_conv2d_s16(const tp_conv_params *params, const tp_per_channel_requant *quant,
                             const tp_dims *input_dims, const int16_t *input,
                             const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                             const tp_dims *output_dims, int16_t *output);

/* The input rows [*first, *last] whose taps land on output coordinate `out` along one
 * axis (empty when *first > *last); the tap of input row i is out + padding - i * stride. */
static inline void tp_transpose_conv_sources(int32_t out, int32_t stride, int32_t padding, int32_t taps,
                                             int32_t input_size, int32_t *first, int32_t *last)
{
    const int32_t reach = out + padding; /* >= 0: padding is never negative */
    const int32_t lowest = reach - taps + 1; /* the last tap lands here from row lowest / stride */
    int32_t hi = reach / stride;
    int32_t lo = lowest > 0 ? (lowest + stride - 1) / stride : 0;
    if (hi > input_size - 1) {
        hi = input_size - 1;
    }
    *first = lo;
    *last = hi;
}

#endif /* TP_TRANSPOSE_CONV_H */
