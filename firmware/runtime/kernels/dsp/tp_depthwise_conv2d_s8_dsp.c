/* DEPTHWISE_CONV_2D (depth multiplier 1) for the DSP extension: four channels per step, two
 * taps per SMLAD. Two word loads bring four channels of two neighbouring taps of a filter row;
 * PKHBT/PKHTB regroup them into (channel c at tap t, channel c at tap t + 1) byte pairs, and
 * SXTAB16 unpacks those and adds the input offset in one instruction. The weights arrive
 * already in that order as int16 pairs (tp_dsp.h), two word loads per pair of taps.
 * Rows of taps in the padding are skipped; columns of taps in the padding (border pixels
 * only) read the input zero point instead, which the offset turns into 0. */
#include "tp_dsp.h"

#include "tp_dsp_simd.h"

/* acc += two taps (t, u) of four channels times their weight pairs w[0..3]. */
__attribute__((always_inline)) static inline void tp_dsp_dw_pair(int32_t t, int32_t u, const int32_t *w, int32_t offset_pair, int32_t *acc)
{
    const int32_t low = tp_pkhbt16(t, u), high = tp_pkhtb16(u, t); /* channels 0,1 and 2,3 */
    acc[0] = tp_smlad(tp_sxtab16(offset_pair, low), w[0], acc[0]);
    acc[1] = tp_smlad(tp_sxtab16_ror8(offset_pair, low), w[1], acc[1]);
    acc[2] = tp_smlad(tp_sxtab16(offset_pair, high), w[2], acc[2]);
    acc[3] = tp_smlad(tp_sxtab16_ror8(offset_pair, high), w[3], acc[3]);
}

/* acc += one tap x of four channels times its weights w[0] = (c, c+2), w[1] = (c+1, c+3). */
__attribute__((always_inline)) static inline void tp_dsp_dw_single(int32_t x, const int32_t *w, int32_t offset_pair, int32_t *acc)
{
    const int32_t even = tp_sxtab16(offset_pair, x), odd = tp_sxtab16_ror8(offset_pair, x);
    acc[0] = tp_smlabb(even, w[0], acc[0]);
    acc[2] = tp_smlatt(even, w[0], acc[2]);
    acc[1] = tp_smlabb(odd, w[1], acc[1]);
    acc[3] = tp_smlatt(odd, w[1], acc[3]);
}

/* What every output pixel of one layer shares. */
typedef struct {
    const tp_conv_params *conv;
    const tp_per_channel_requant *quant;
    const int32_t *channels; /* TP_DSP_CHANNEL_WORDS per channel, the plain bias first */
    int32_t groups;      /* whole groups of four channels */
    int32_t group_words; /* packed filter words per group: 2 per tap */
    int32_t x_step, y_step;
    int32_t offset_pair;     /* the input offset in both halfwords */
    int32_t zero_point_word; /* the input zero point in all four bytes */
} tp_dsp_dw_layer;

/* tp_dsp_requantize plus the output offset: out of line, so the common short form keeps its registers. */
__attribute__((noinline, cold)) static int32_t tp_dsp_dw_requantize_general(const tp_dsp_dw_layer *layer, int32_t channel,
                                                                            int32_t acc)
{
    return tp_dsp_requantize(acc, layer->quant->multiplier[channel], layer->quant->shift[channel]) +
           layer->conv->output_offset;
}

/* The requantized (not yet clamped) output of channel's accumulator, words being its output
 * words: the short requantization of tp_dsp.h where the generator proved it exact,
 * tp_dsp_requantize elsewhere. */
static inline int32_t tp_dsp_dw_requantize(const tp_dsp_dw_layer *layer, const int32_t *words, int32_t multiplier,
                                           int32_t channel, int32_t acc)
{
    if (words[1] != 0) {
        const int32_t high = tp_smmulr((int32_t)((uint32_t)acc << words[1]), multiplier);
        return (high + (high >> 31) + words[3]) >> words[2];
    }
    return tp_dsp_dw_requantize_general(layer, channel, acc);
}

/* Outputs c..c+3; every value is read before the first int8 store (which may alias anything). */
__attribute__((always_inline)) static inline void tp_dsp_dw_store(const tp_dsp_dw_layer *layer, int32_t c, const int32_t *acc, int8_t *out)
{
    const int32_t *words = layer->channels + TP_DSP_CHANNEL_WORDS * c;
    const int32_t lo = layer->conv->activation.min, hi = layer->conv->activation.max;
    const int32_t *multiplier = layer->quant->multiplier + c;
    const int32_t m0 = multiplier[0], m1 = multiplier[1], m2 = multiplier[2], m3 = multiplier[3];
    const int32_t v0 = tp_dsp_dw_requantize(layer, words, m0, c, acc[0]);
    const int32_t v1 = tp_dsp_dw_requantize(layer, words + TP_DSP_CHANNEL_WORDS, m1, c + 1, acc[1]);
    const int32_t v2 = tp_dsp_dw_requantize(layer, words + 2 * TP_DSP_CHANNEL_WORDS, m2, c + 2, acc[2]);
    const int32_t v3 = tp_dsp_dw_requantize(layer, words + 3 * TP_DSP_CHANNEL_WORDS, m3, c + 3, acc[3]);
    out[0] = (int8_t)tp_clamp(v0, lo, hi);
    out[1] = (int8_t)tp_clamp(v1, lo, hi);
    out[2] = (int8_t)tp_clamp(v2, lo, hi);
    out[3] = (int8_t)tp_clamp(v3, lo, hi);
}

__attribute__((always_inline)) static inline void tp_dsp_dw_bias(const tp_dsp_dw_layer *layer, int32_t c,
                                                                  int32_t *acc)
{
    const int32_t *words = layer->channels + TP_DSP_CHANNEL_WORDS * c;
    acc[0] = words[0];
    acc[1] = words[TP_DSP_CHANNEL_WORDS];
    acc[2] = words[2 * TP_DSP_CHANNEL_WORDS];
    acc[3] = words[3 * TP_DSP_CHANNEL_WORDS];
}

/* Every whole channel group of one output pixel of a three-tap-wide filter: rows of taps from
 * p (channel 0 of the first row inside the input) on, weights from the first such row of group
 * 0. The left or right column tap lies in the padding when left_pad or right_pad, constants in
 * each caller below, so each gets its own register allocation and no tests in the loop. */
__attribute__((always_inline)) static inline void tp_dsp_dw_pixel3(const tp_dsp_dw_layer *layer, const int8_t *p, int32_t rows, const int32_t *w,
                                    int8_t *out, int left_pad, int right_pad)
{
    const int32_t x_step = layer->x_step, y_step = layer->y_step, offset_pair = layer->offset_pair;
    for (int32_t c = 0; c < 4 * layer->groups; c += 4, p += 4, w += layer->group_words) {
        int32_t acc[4];
        tp_dsp_dw_bias(layer, c, acc);
        const int8_t *row = p;
        const int32_t *rw = w;
        for (int32_t n = rows; n > 0; --n, row += y_step, rw += 6) {
            const int32_t t = left_pad ? layer->zero_point_word : tp_read_s8x4(row);
            const int32_t u = tp_read_s8x4(row + x_step);
            const int32_t v = right_pad ? layer->zero_point_word : tp_read_s8x4(row + 2 * x_step);
            tp_dsp_dw_pair(t, u, rw, offset_pair, acc);
            tp_dsp_dw_single(v, rw + 4, offset_pair, acc);
        }
        tp_dsp_dw_store(layer, c, acc, out + c);
    }
}

__attribute__((noinline, optimize("no-schedule-insns"))) static void tp_dsp_dw_pixel3_inside(const tp_dsp_dw_layer *layer, const int8_t *p,
                                                              int32_t rows, const int32_t *w, int8_t *out)
{
    tp_dsp_dw_pixel3(layer, p, rows, w, out, 0, 0);
}

__attribute__((noinline, optimize("no-schedule-insns"))) static void tp_dsp_dw_pixel3_left(const tp_dsp_dw_layer *layer, const int8_t *p,
                                                            int32_t rows, const int32_t *w, int8_t *out)
{
    tp_dsp_dw_pixel3(layer, p, rows, w, out, 1, 0);
}

__attribute__((noinline, optimize("no-schedule-insns"))) static void tp_dsp_dw_pixel3_right(const tp_dsp_dw_layer *layer, const int8_t *p,
                                                             int32_t rows, const int32_t *w, int8_t *out)
{
    tp_dsp_dw_pixel3(layer, p, rows, w, out, 0, 1);
}

__attribute__((noinline, optimize("no-schedule-insns"))) static void tp_dsp_dw_pixel3_both(const tp_dsp_dw_layer *layer, const int8_t *p,
                                                            int32_t rows, const int32_t *w, int8_t *out)
{
    tp_dsp_dw_pixel3(layer, p, rows, w, out, 1, 1);
}

/* Any filter width and clipping: taps fx outside [fx_begin, fx_end) read the zero point.
 * row is the offset in image of column tap 0 (maybe in the padding) of the first row. */
static void tp_dsp_dw_pixel(const tp_dsp_dw_layer *layer, const int8_t *image, int32_t row, int32_t rows,
                            int32_t kw, const int32_t *w, int32_t fx_begin, int32_t fx_end, int8_t *out)
{
    for (int32_t c = 0; c < 4 * layer->groups; c += 4, w += layer->group_words) {
        int32_t acc[4];
        tp_dsp_dw_bias(layer, c, acc);
        const int32_t *rw = w;
        for (int32_t n = 0; n < rows; ++n) {
            const int32_t at = row + c + n * layer->y_step;
            for (int32_t fx = 0; fx < kw; fx += 2) {
                const int32_t t = fx >= fx_begin && fx < fx_end ? tp_read_s8x4(image + at + fx * layer->x_step)
                                                                 : layer->zero_point_word;
                if (fx + 1 == kw) {
                    tp_dsp_dw_single(t, rw, layer->offset_pair, acc);
                    rw += 2;
                    break;
                }
                const int32_t u = fx + 1 >= fx_begin && fx + 1 < fx_end
                                      ? tp_read_s8x4(image + at + (fx + 1) * layer->x_step)
                                      : layer->zero_point_word;
                tp_dsp_dw_pair(t, u, rw, layer->offset_pair, acc);
                rw += 4;
            }
        }
        tp_dsp_dw_store(layer, c, acc, out + c);
    }
}

void tp_depthwise_conv2d_s8_dsp(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input,
                                const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *channel_words,
                                const tp_dims *output_dims, int8_t *output)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t channels = input_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    const int32_t groups = channels / 4, taps = kh * kw;
    const tp_dsp_dw_layer layer = {
        conv, quant, channel_words, groups, 2 * taps, conv->dilation.w * channels,
        conv->dilation.h * input_dims->w * channels,
        (int32_t)(((uint32_t)conv->input_offset & 0xFFFFu) | ((uint32_t)conv->input_offset << 16)),
        (int32_t)(((uint32_t)-conv->input_offset & 0xFFu) * 0x01010101u),
    };
    const int32_t *tail_filter = packed_filter + groups * 2 * taps;
    int8_t *out = output;

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t y0 = oy * conv->stride.h - conv->padding.h;
            const int32_t fy_begin = tp_conv_tap_begin(y0, conv->dilation.h);
            const int32_t fy_end = tp_conv_tap_end(y0, conv->dilation.h, input_dims->h, kh);
            const int32_t rows = fy_end - fy_begin;
            const int32_t *weights = packed_filter + fy_begin * 2 * kw;
            for (int32_t ox = 0; ox < output_dims->w; ++ox, out += channels) {
                const int32_t x0 = ox * conv->stride.w - conv->padding.w;
                const int32_t fx_begin = tp_conv_tap_begin(x0, conv->dilation.w);
                const int32_t fx_end = tp_conv_tap_end(x0, conv->dilation.w, input_dims->w, kw);
                /* Offset of the first tap row inside the input, column tap 0 (maybe in the padding). */
                const int32_t first_row = ((y0 + fy_begin * conv->dilation.h) * input_dims->w + x0) * channels;
                const int8_t *p = image + first_row; /* only read where the tap is inside */
                if (kw != 3 || fx_begin > 1 || fx_end < 2) {
                    tp_dsp_dw_pixel(&layer, image, first_row, rows, kw, weights, fx_begin, fx_end, out);
                } else if (fx_begin == 0) {
                    (fx_end == 3 ? tp_dsp_dw_pixel3_inside : tp_dsp_dw_pixel3_right)(&layer, p, rows, weights, out);
                } else {
                    (fx_end == 3 ? tp_dsp_dw_pixel3_left : tp_dsp_dw_pixel3_both)(&layer, p, rows, weights, out);
                }
                for (int32_t c = 4 * groups; c < channels; ++c) {
                    int32_t acc = channel_words[TP_DSP_CHANNEL_WORDS * c];
                    const int32_t *tail = tail_filter + (c - 4 * groups) * taps;
                    for (int32_t fy = fy_begin; fy < fy_end; ++fy) {
                        const int32_t row = first_row + c + (fy - fy_begin) * layer.y_step;
                        for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                            acc += tail[fy * kw + fx] * (image[row + fx * layer.x_step] + conv->input_offset);
                        }
                    }
                    out[c] = (int8_t)tp_clamp(tp_dsp_dw_requantize(&layer, channel_words + TP_DSP_CHANNEL_WORDS * c,
                                                                   quant->multiplier[c], c, acc),
                                              conv->activation.min, conv->activation.max);
                }
            }
        }
    }
}
