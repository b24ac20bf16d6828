/* DEPTHWISE_CONV_2D, int8, depth multiplier 1, on MVE (tp_helium_dw.h): eight channels per
 * vector, two interior pixels along a row per pass, valid taps only at the borders. */
#include "tp_helium_dw.h"

#include "tp_fixedpoint.h"

/* Eight channels of an input as int16: a tail group (fewer than eight left) loads under its
 * predicate (zeros past the channel count), so no byte past the tensor is read. */
TP_HELIUM_DW_INLINE int16x8_t load8(const int8_t *x, mve_pred16_t p, int tail)
{
    return tail ? vldrbq_z_s16(x, p) : vldrbq_s16(x);
}

/* The even and odd channels' accumulators plus x times w, lane by lane. */
#define TP_DW_MAC(even, odd, x, w)                                                                                   \
    do {                                                                                                               \
        const int16x8_t x_ = (x);                                                                                      \
        (even) = vaddq_s32((even), vmullbq_int_s16(x_, (w)));                                                          \
        (odd) = vaddq_s32((odd), vmulltq_int_s16(x_, (w)));                                                            \
    } while (0)

/* A group's requantization vectors: multiplier, left and right shift of its even and odd lanes. */
typedef struct {
    int32x4_t multiplier[2], left[2], right[2];
} requant8;

TP_HELIUM_DW_INLINE requant8 load_requant(const int32_t *group)
{
    const requant8 r = {{vldrwq_s32(group + 16), vldrwq_s32(group + 20)},
                        {vldrwq_s32(group + 24), vldrwq_s32(group + 28)},
                        {vldrwq_s32(group + 32), vldrwq_s32(group + 36)}};
    return r;
}

/* Requantized, narrowed back into channel order (saturating to int16, which the int8 clamp
 * absorbs), offset, clamped and stored: one group of eight channels of one pixel. */
TP_HELIUM_DW_INLINE void store8(int32x4_t even, int32x4_t odd, const requant8 *r,
                                                         const tp_conv_params *conv, int8_t *out, mve_pred16_t p,
                                                         int tail)
{
    even = tp_helium_dw_requantize(even, r->multiplier[0], r->left[0], r->right[0]);
    odd = tp_helium_dw_requantize(odd, r->multiplier[1], r->left[1], r->right[1]);
    int16x8_t value = vqmovntq_s32(vqmovnbq_s32(vreinterpretq_s16_s32(even), even), odd);
    value = vqaddq_n_s16(value, (int16_t)conv->output_offset);
    value = vminq_s16(vmaxq_s16(value, vdupq_n_s16((int16_t)conv->activation.min)),
                      vdupq_n_s16((int16_t)conv->activation.max));
    if (tail) {
        vstrbq_p_s16(out, value, p);
    } else {
        vstrbq_s16(out, value);
    }
}

/* One group of eight channels for two consecutive interior pixels: each tap vector loaded once. */
TP_HELIUM_DW_INLINE void interior_group(const tp_conv_params *conv, const int8_t *window,
                                                                 int32_t pixel_step, int32_t row_step, int32_t tap_step,
                                                                 int32_t kh, int32_t kw, const int8_t *taps,
                                                                 const int32_t *group, int32_t channels, int8_t *out,
                                                                 mve_pred16_t p, int tail)
{
    int32x4_t even0 = vldrwq_s32(group + 8), odd0 = vldrwq_s32(group + 12);
    int32x4_t even1 = even0, odd1 = odd0;
    for (int32_t fy = 0; fy < kh; ++fy) {
        const int8_t *x = window + fy * row_step;
        for (int32_t fx = 0; fx < kw; ++fx) {
            const int16x8_t w = vldrbq_s16(taps);
            taps += 8;
            TP_DW_MAC(even0, odd0, load8(x, p, tail), w);
            TP_DW_MAC(even1, odd1, load8(x + pixel_step, p, tail), w);
            x += tap_step;
        }
    }
    const requant8 r = load_requant(group);
    store8(even0, odd0, &r, conv, out, p, tail);
    store8(even1, odd1, &r, conv, out + channels, p, tail);
}

/* One group of eight channels of one pixel over taps [fy0, fy1) x [fx0, fx1): on the effective
 * bias when that is the whole filter (`folded`), else on the plain bias, offsetting each input. */
TP_HELIUM_DW_INLINE void pixel_group(const tp_conv_params *conv, const int8_t *window,
                                                              int32_t row_step, int32_t tap_step, int32_t kw,
                                                              int32_t fy0, int32_t fy1, int32_t fx0, int32_t fx1,
                                                              const int8_t *taps, const int32_t *group, int8_t *out,
                                                              mve_pred16_t p, int tail, int folded)
{
    int32x4_t even = vldrwq_s32(group + (folded ? 8 : 0)), odd = vldrwq_s32(group + (folded ? 12 : 4));
    for (int32_t fy = fy0; fy < fy1; ++fy) {
        const int8_t *x = window + fy * row_step + fx0 * tap_step;
        const int8_t *w = taps + (fy * kw + fx0) * 8;
        for (int32_t fx = fx0; fx < fx1; ++fx) {
            const int16x8_t in = load8(x, p, tail);
            TP_DW_MAC(even, odd, folded ? in : vaddq_n_s16(in, (int16_t)conv->input_offset), vldrbq_s16(w));
            x += tap_step;
            w += 8;
        }
    }
    const requant8 r = load_requant(group);
    store8(even, odd, &r, conv, out, p, tail);
}

/* Every channel group of one pixel (`window` at the filter's first tap, channel 0). */
TP_HELIUM_DW_INLINE void pixel(const tp_conv_params *conv, const int8_t *window,
                                                        int32_t row_step, int32_t tap_step, int32_t kh, int32_t kw,
                                                        int32_t fy0, int32_t fy1, int32_t fx0, int32_t fx1,
                                                        const int8_t *filter, const int32_t *words, int32_t channels,
                                                        int8_t *out, int folded)
{
    const int32_t taps = kh * kw * 8;
    int32_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        pixel_group(conv, window + c, row_step, tap_step, kw, fy0, fy1, fx0, fx1, filter, words, out + c, 0, 0, folded);
        filter += taps;
        words += TP_HELIUM_DW_GROUP_WORDS;
    }
    if (c < channels) {
        pixel_group(conv, window + c, row_step, tap_step, kw, fy0, fy1, fx0, fx1, filter, words, out + c,
                    vctp16q((uint32_t)(channels - c)), 1, folded);
    }
}

/* The whole convolution for a kh x kw filter (constants where the caller knows them: unrolled taps). */
/* One pixel whose window may cross the border: its valid taps on the plain bias. */
TP_HELIUM_DW_INLINE void border_pixel(const tp_conv_params *conv, const tp_dims *input_dims,
                                                               const int8_t *row, int32_t ox, int32_t fy0, int32_t fy1,
                                                               int32_t row_step, int32_t tap_step, int32_t kh,
                                                               int32_t kw, const int8_t *filter, const int32_t *words,
                                                               int8_t *out)
{
    const int32_t in_x0 = ox * conv->stride.w - conv->padding.w;
    const int32_t fx0 = tp_conv_tap_begin(in_x0, conv->dilation.w);
    const int32_t fx1 = tp_conv_tap_end(in_x0, conv->dilation.w, input_dims->w, kw);
    pixel(conv, row + in_x0 * input_dims->c, row_step, tap_step, kh, kw, fy0, fy1, fx0, fx1, filter, words,
          input_dims->c, out, 0);
}

/* The whole convolution for a kh x kw filter (constants where the caller knows them). */
TP_HELIUM_DW_INLINE void depthwise(const tp_conv_params *conv, const tp_dims *input_dims,
                                                            const int8_t *input, int32_t kh, int32_t kw,
                                                            const int8_t *filter, const int32_t *words,
                                                            const tp_dims *output_dims, int8_t *output)
{
    const int32_t channels = input_dims->c, out_w = output_dims->w;
    const int32_t row_step = conv->dilation.h * input_dims->w * channels;
    const int32_t tap_step = conv->dilation.w * channels;
    const int32_t pixel_step = conv->stride.w * channels;
    const int32_t taps = kh * kw * 8;
    /* Output columns [x_lo, x_hi) have every tap inside the input along the row. */
    const int32_t last = input_dims->w - 1 - (kw - 1) * conv->dilation.w + conv->padding.w; /* latest in_x0 + pad */
    const int32_t x_lo = TP_MIN(out_w, (conv->padding.w + conv->stride.w - 1) / conv->stride.w);
    const int32_t x_hi = TP_MAX(x_lo, last < 0 ? 0 : TP_MIN(out_w, last / conv->stride.w + 1));
    int8_t *out = output;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t in_y0 = oy * conv->stride.h - conv->padding.h;
            const int32_t fy0 = tp_conv_tap_begin(in_y0, conv->dilation.h);
            const int32_t fy1 = tp_conv_tap_end(in_y0, conv->dilation.h, input_dims->h, kh);
            /* The window's top-left tap, padding or not: only valid taps are read from it. */
            const int8_t *row = image + in_y0 * input_dims->w * channels;
            int32_t ox = 0;
            if (fy0 == 0 && fy1 == kh) {
                for (; ox < x_lo; ++ox, out += channels) {
                    border_pixel(conv, input_dims, row, ox, fy0, fy1, row_step, tap_step, kh, kw, filter, words, out);
                }
                const int8_t *window = row + (x_lo * conv->stride.w - conv->padding.w) * channels;
                for (; ox + 2 <= x_hi; ox += 2, out += 2 * channels, window += 2 * pixel_step) {
                    const int8_t *group_taps = filter;
                    const int32_t *group = words;
                    int32_t c = 0;
                    for (; c + 8 <= channels; c += 8) {
                        interior_group(conv, window + c, pixel_step, row_step, tap_step, kh, kw, group_taps, group,
                                       channels, out + c, 0, 0);
                        group_taps += taps;
                        group += TP_HELIUM_DW_GROUP_WORDS;
                    }
                    if (c < channels) {
                        interior_group(conv, window + c, pixel_step, row_step, tap_step, kh, kw, group_taps, group,
                                       channels, out + c, vctp16q((uint32_t)(channels - c)), 1);
                    }
                }
                if (ox < x_hi) {
                    pixel(conv, window, row_step, tap_step, kh, kw, 0, kh, 0, kw, filter, words, channels, out, 1);
                    ++ox;
                    out += channels;
                }
            }
            for (; ox < out_w; ++ox, out += channels) {
                border_pixel(conv, input_dims, row, ox, fy0, fy1, row_step, tap_step, kh, kw, filter, words, out);
            }
        }
    }
}

void tp_depthwise_conv2d_s8_helium(const tp_depthwise_conv_params *params, const tp_dims *input_dims,
                                   const int8_t *input, const tp_dims *filter_dims, const int8_t *filter,
                                   const int32_t *words, const tp_dims *output_dims, int8_t *output)
{
    if (filter_dims->h == 3 && filter_dims->w == 3) { /* most depthwise layers */
        depthwise(&params->conv, input_dims, input, 3, 3, filter, words, output_dims, output);
    } else {
        depthwise(&params->conv, input_dims, input, filter_dims->h, filter_dims->w, filter, words, output_dims, output);
    }
}
