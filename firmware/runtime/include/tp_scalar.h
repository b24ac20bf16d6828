/* Int8 kernels for cores without the DSP extension (Cortex-M0, M0+, M3): kernels/scalar/.
 *
 * Portable C computing exactly what the reference kernels of tp_conv.h, tp_fully_connected.h
 * (and tp_elementwise.h's ADD/SUB) compute, in fewer instructions on Armv6-M, whose multiply has
 * no accumulate and whose signed byte load has no immediate offset:
 * - one operand of every product is an unsigned byte: an input x read as u = x + 128 (the
 *   convolutions gather their inputs as such into scratch), or a fully connected weight w
 *   stored as v = w + 128. The generator folds the constant this adds, and the input offset
 *   (as tp_dsp.h explains: taps in the zero padding hold the input zero point), into an
 *   effective bias: bias + input_offset * sum(w) - 128 * sum(w) for the convolutions; the fully
 *   connected kernel subtracts 128 * sum(x) per batch row itself.
 * - each loaded weight is used for four output pixels (convolutions), each loaded input for
 *   four output channels (fully connected): four accumulators, one load per product.
 * - no division per output, and the requantization's 64-bit product in 32-bit halves.
 * Accumulators wrap in uint32 as the reference's int32 sums wrap: the same integer mod 2^32.
 */
#ifndef TP_SCALAR_H
#define TP_SCALAR_H

#include "tp_conv.h"
#include "tp_elementwise.h"
#include "tp_fixedpoint.h"
#include "tp_fully_connected.h"
#include "tp_types.h"

/* tp_requantize for a non-negative multiplier (every generated one is), without a 64-bit
 * multiply (a library call on Armv6-M). The doubling high product with the reference's
 * nudge and truncation is floor((a * b + 2^30) / 2^31) (tp_dsp_requantize says why), here
 * from the four 16 x 16 partial products of a = ah * 2^16 + al and b = bh * 2^16 + bl:
 * a * b + 2^30 = 2 ah bh 2^31 + (ah bl + al bh) 2^16 + al bl + 2^30, whose floor division by
 * 2^31 takes the middle terms' high parts apart and their low 15 bits together, so that
 * nothing overflows 32 bits (|ah bl| and al bh are below 2^31). */
static inline int32_t tp_scalar_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t a = tp_shift_left(x, left);
    const int32_t ah = a >> 16;
    const int32_t al = a & 0xFFFF;
    const int32_t bh = multiplier >> 16;
    const int32_t bl = multiplier & 0xFFFF;
    const int32_t m1 = ah * bl;
    const int32_t m2 = al * bh;
    const uint32_t lo = (uint32_t)al * (uint32_t)bl;
    const int32_t low = (m1 & 0x7FFF) + (m2 & 0x7FFF) + (int32_t)(lo >> 16) + (1 << 14);
    const int32_t high = (int32_t)((uint32_t)(ah * bh) << 1) + (m1 >> 15) + (m2 >> 15) + (low >> 15);
    return tp_rounding_divide_by_pot(high, right);
}

/* The short requantization's words, TP_SCALAR_OUTPUT_WORDS int32 (tp_scalar_store forms them
 * from a channel's multiplier and shift): the multiplier's high and low halves bh and bl,
 * rounding and right (the negated shift), and the mask of the high product's sign (-1, or 0 at
 * right 0). The generator allows the short form per output channel (a flag byte) where the
 * shift is not positive and the accumulator stays below 2^29 in magnitude for every int8 input;
 * other channels go through tp_scalar_requantize. */
#define TP_SCALAR_OUTPUT_WORDS 5

/* tp_requantize plus the output offset in the short form the words above allow: with a split
 * as ah * 2^16 + al, al the sign-extended low half (|ah| < 2^13), the partial products ah bl,
 * al bh and al bl (each below 2^31 in magnitude) sum without overflow, the high product is
 * 2 ah bh + floor((ah bl + al bh + floor(al bl / 2^16) + 2^14) / 2^15), and the reference's
 * rounding divide by 2^right plus the output offset is one floor shift: rounding = 2^(right - 1)
 * + output_offset * 2^right, less one for a negative high product (the generator checks that
 * this sum fits 32 bits). */
static inline int32_t tp_scalar_short_output(int32_t acc, const int32_t *words)
{
    const int32_t ah = (acc + 0x8000) >> 16;
    const int32_t al = acc - (int32_t)((uint32_t)ah << 16);
    const int32_t mid = ah * words[1] + al * words[0] + ((al * words[1]) >> 16) + (1 << 14);
    const int32_t high = 2 * ah * words[0] + (mid >> 15);
    return (high + ((high >> 31) & words[4]) + words[2]) >> words[3];
}

/* The first `count` of four accumulators of one output channel as int8 outputs `stride` apart:
 * the short form where the channel's flag allows it, else the reference's requantization. */
static inline void tp_scalar_store(const uint32_t *acc, int32_t count, int32_t short_form, int32_t multiplier,
                                   int32_t shift, int32_t output_offset, const tp_activation *activation,
                                   int8_t *out, int32_t stride)
{
    const int32_t lo = activation->min, hi = activation->max;
    if (short_form) {
        const int32_t right = -shift;
        const int32_t words[TP_SCALAR_OUTPUT_WORDS] = {
            multiplier >> 16, multiplier & 0xFFFF,
            (int32_t)((1u << right >> 1) + ((uint32_t)output_offset << right)), right, right ? -1 : 0};
        for (int32_t p = 0; p < count; ++p) {
            out[p * stride] = (int8_t)tp_clamp(tp_scalar_short_output((int32_t)acc[p], words), lo, hi);
        }
    } else {
        for (int32_t p = 0; p < count; ++p) {
            const int32_t value = tp_scalar_requantize((int32_t)acc[p], multiplier, shift) + output_offset;
            out[p * stride] = (int8_t)tp_clamp(value, lo, hi);
        }
    }
}

/* acc[j] += sum_{i < k} s[i] * q[4 * i + j] for j < 4: one signed byte against four interleaved
 * unsigned ones, the products of both kernels (assembly on Armv6-M). */
void tp_scalar_dot4(const int8_t *s, const uint8_t *q, int32_t k, uint32_t acc[4]);

/* acc[p] += sum over the 3x3 taps w[3 * ky + kx] * q[ky * row_step + kx + p * stride], four
 * output pixels along a row of the depthwise kernel's plane, stride 1 or 2 (assembly on Armv6-M). */
void tp_scalar_dw3x3_s1(const uint8_t *q, const int8_t *w, int32_t row_step, uint32_t acc[4]);
void tp_scalar_dw3x3_s2(const uint8_t *q, const int8_t *w, int32_t row_step, uint32_t acc[4]);

/* CONV_2D without groups. filter: [out_c][kh][kw][in_c] as in the model; bias: per output
 * channel the effective bias above (input offset and -128 * sum(w) folded in); short_form: per
 * output channel whether the short requantization applies (tp_scalar_store). scratch: the
 * four interleaved columns the kernel gathers, 4 * kh * kw * in_c bytes. */
void tp_conv2d_s8_scalar(const tp_conv_params *params, const tp_per_channel_requant *quant,
                         const tp_dims *input_dims, const int8_t *input,
                         const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                         const uint8_t *short_form, const tp_dims *output_dims, int8_t *output, uint8_t *scratch);

/* DEPTHWISE_CONV_2D with depth multiplier 1. filter: per channel its [kh][kw] taps; bias and
 * short_form as above. scratch: one padded plane of an input channel, plane_rows * plane_cols bytes
 * (the generator's sizes: every row and column a window reads), then the four pixels' windows,
 * 4 * kh * kw bytes (which a 3x3 filter's last row of four-pixel blocks may read into). */
void tp_depthwise_conv2d_s8_scalar(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                   const tp_dims *input_dims, const int8_t *input,
                                   const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const uint8_t *short_form, const tp_dims *output_dims, int8_t *output,
                                   int32_t plane_rows, int32_t plane_cols, uint8_t *scratch);

/* FULLY_CONNECTED with symmetric weights (filter_offset 0). packed_filter: the weights as
 * v = w + 128, per block of four rows for each input the four rows' bytes, then the rows past
 * the last whole block row by row; bias: bias + input_offset * sum(w) per row; short_form as
 * above, per row. */
void tp_fully_connected_s8_scalar(const tp_fc_params *params, const tp_per_channel_requant *quant,
                                  int32_t batches, int32_t accum_depth, int32_t output_depth,
                                  const int8_t *input, const uint8_t *packed_filter, const int32_t *bias,
                                  const uint8_t *short_form, int8_t *output);

/* ADD (or SUB) of two inputs of the output's shape (no broadcast), count elements. scaled: 256
 * int32 per input indexed by value + 128, what the reference adds (input 2's negated for SUB):
 * the DSP set's tables (tp_dsp.h); then the output's requantization as params say. */
void tp_add_s8_scalar(const tp_add_params *params, const int32_t *scaled, int32_t count, const int8_t *input1,
                      const int8_t *input2, int8_t *output);

#endif /* TP_SCALAR_H */
