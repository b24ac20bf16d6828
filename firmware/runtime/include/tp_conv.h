/* 2-D convolutions over NHWC int8 tensors: regular (optionally grouped) and depthwise.
 *
 * Filters are symmetric int8 (zero point 0) and every output channel has its own
 * requant entry; per-tensor models carry the one entry repeated. Taps that fall
 * outside the input contribute nothing (zero padding in the real domain).
 */
#ifndef TP_CONV_H
#define TP_CONV_H

#include "tp_types.h"

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    tp_hw stride;
    tp_hw dilation;
    tp_hw padding; /* top and left padding; bottom and right follow from the output size */
    tp_activation activation;
} tp_conv_params;

typedef struct {
    tp_conv_params conv;
    int32_t depth_multiplier; /* output channels per input channel */
} tp_depthwise_conv_params;

/* filter is [out_c][kh][kw][in_c / groups]; the group count is input_dims->c / filter_dims->c.
 * bias may be NULL. */
void tp_conv2d_s8(const tp_conv_params *params, const tp_per_channel_requant *quant,
                  const tp_dims *input_dims, const int8_t *input,
                  const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                  const tp_dims *output_dims, int8_t *output);

/* filter is [1][kh][kw][in_c * depth_multiplier]; output channel c reads input channel
 * c / depth_multiplier. bias may be NULL. */
void tp_depthwise_conv2d_s8(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                            const tp_dims *input_dims, const int8_t *input,
                            const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                            const tp_dims *output_dims, int8_t *output);

/* Filter taps [begin, end) along one axis that land inside the input, for a window whose
 * first tap sits at input coordinate origin (negative inside the padding). */
static inline int32_t tp_conv_tap_begin(int32_t origin, int32_t dilation)
{
    return origin >= 0 ? 0 : (dilation - 1 - origin) / dilation;
}

static inline int32_t tp_conv_tap_end(int32_t origin, int32_t dilation, int32_t input_size, int32_t taps)
{
    const int32_t room = input_size - origin;
    const int32_t end = room > 0 ? (room + dilation - 1) / dilation : 0;
    return end < taps ? end : taps;
}

/* CONV_2D with int16 activations (zero points 0), int8 filter, int64 bias (may be NULL), an int64
 * accumulator and per-channel requant; params' offsets are unused. */
void tp_conv2d_s16(const tp_conv_params *params, const tp_per_channel_requant *quant,
                   const tp_dims *input_dims, const int16_t *input,
                   const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                   const tp_dims *output_dims, int16_t *output);

/* DEPTHWISE_CONV_2D in 16x8, as tp_conv2d_s16: int16 activations (zero points 0), int8 filter,
 * int64 bias (may be NULL), an int64 accumulator; params' offsets are unused. */
void tp_depthwise_conv2d_s16(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                             const tp_dims *input_dims, const int16_t *input,
                             const tp_dims *filter_dims, const int8_t *filter, const int64_t *bias,
                             const tp_dims *output_dims, int16_t *output);

#endif /* TP_CONV_H */
