/* Int8 kernels for cores with the Arm DSP extension (Cortex-M4, M7, M33): kernels/dsp/.
 *
 * They compute exactly what the reference kernels of tp_conv.h and tp_fully_connected.h
 * compute, faster: two int16 products per SMLAD, output channels and pixels blocked two by
 * two so operands stay in registers, and the input offset folded out of the inner loop.
 * The generator passes an effective bias, bias[o] + input_offset * sum(filter[o]), exact
 * integer arithmetic done once at generation time: then acc = sum(x * w) + effective_bias[o]
 * equals the reference's sum((x + input_offset) * w) + bias[o]. Taps that fall into the
 * zero padding are filled with the input zero point (x + input_offset = 0), so the fold
 * holds at the borders too. Requantization is the reference's tp_requantize.
 */
#ifndef TP_DSP_H
#define TP_DSP_H

#include "tp_conv.h"
#include "tp_elementwise.h"
#include "tp_fixedpoint.h"
#include "tp_fully_connected.h"
#include "tp_types.h"

/* tp_requantize for a non-negative multiplier (every generated one is), in fewer instructions.
 * The doubling high multiply's nudge and truncation toward zero together equal one floor
 * shift: trunc((ab + 2^30) / 2^31) for ab >= 0, and trunc((ab + 1 - 2^30) / 2^31)
 * = floor((ab + 2^30) / 2^31) for ab < 0. Its saturating case needs multiplier INT32_MIN.
 * The rounding divide is the reference's, with the sign test as a shift. */
static inline int32_t tp_dsp_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int64_t ab = (int64_t)tp_shift_left(x, left) * multiplier;
    const int32_t high = (int32_t)((ab + (1LL << 30)) >> 31);
    const int32_t mask = (int32_t)((1LL << right) - 1);
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
    return (high >> right) + ((high & mask) > threshold ? 1 : 0);
}

/* The convolution's per-channel output words, TP_DSP_CHANNEL_WORDS int32 per output channel,
 * precomputed at generation time: effective bias, left + 1, right, rounding, where left and
 * right are the positive and negative parts of the channel's shift. With h the rounded
 * doubling high product, SMMULR(acc << (left + 1), multiplier) = floor((acc * 2^left *
 * multiplier + 2^30) / 2^31), the reference's rounding divide plus the output offset is one
 * floor shift: (h + (h < 0 ? -1 : 0) + rounding) >> right with rounding = 2^(right - 1) +
 * output_offset * 2^right. That holds when right >= 1 and nothing overflows, which the
 * generator proves per channel from the weights, bias and input offset (|acc| * 2^left < 2^30
 * for every int8 input, and the sum fits int32); a channel where it does not has left + 1 = 0
 * and goes through tp_dsp_requantize. As the short form needs right >= 1, its left is 0: left + 1
 * is 1 or 0. */
#define TP_DSP_CHANNEL_WORDS 4

/* The convolution's output words per pair of output channels (an odd count's last channel
 * paired with a zero channel), TP_DSP_PAIR_WORDS int32: both effective biases, then each
 * channel's other three words above with its multiplier second: left + 1, multiplier,
 * rounding, right. left + 1 is 0 for both channels of a pair (the matrix kernel's general
 * output: tp_dsp_requantize, then the clamp) where either needs tp_dsp_requantize, for an odd
 * count's last pair, and everywhere when the activation clamps inside the int8 range. */
#define TP_DSP_PAIR_WORDS 10

/* What turns the convolution's int32 accumulators into int8 outputs. */
typedef struct {
    const int32_t *words;      /* TP_DSP_PAIR_WORDS per pair of rows */
    const int32_t *multiplier; /* per row */
    const int32_t *shift;      /* per row */
    int32_t output_offset;
    tp_activation activation;
} tp_dsp_output_stage;

/* The convolution's filter as the matrix kernel reads it (the generator packs it): k = kh * kw *
 * in_c weights per output channel, zero-padded to `groups` = ceil(k / 4) words; for each pair
 * of output channels (the last one of an odd count paired with zeros), for each group the
 * word of the first channel, then of the second. Its columns are widened to int16 pairs as
 * SXTB16 splits each filter word: per group of four inputs x0..x3, the words (x0, x2) and
 * (x1, x3) of column 0, then those of column 1. */

/* out0[r] = requant(dot(column 0, row r)) and out1[r] = the same of column 1, for rows [0, rows),
 * from the widened columns (4 * groups words) and the packed filter. out1 may be out0 when
 * both columns are the same. */
void tp_dsp_gemm_s8(const int32_t *cols, int32_t groups, const int32_t *packed_filter, int32_t rows,
                    const tp_dsp_output_stage *stage, int8_t *out0, int8_t *out1);

/* CONV_2D without groups. words: the output words per pair of channels above. scratch
 * (word-aligned): the two widened columns, 16 * groups bytes, then a filter row's kw * in_c
 * bytes where that is a multiple of 4, else k bytes for gathering a column (tp_dsp_im2col);
 * a 1x1, stride-1, unpadded convolution widens its columns from the input and needs only the
 * first part. */
void tp_conv2d_s8_dsp(const tp_conv_params *params, const tp_per_channel_requant *quant,
                      const tp_dims *input_dims, const int8_t *input,
                      const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *words,
                      const tp_dims *output_dims, int8_t *output, int8_t *scratch);

/* How tp_depthwise_conv2d_s8_dsp cuts its work, chosen by the generator. The planes run along
 * image rows, or along columns when `transposed` (narrow images: longer lines). Bands of
 * band_rows output lines, over int16 planes of plane_rows lines (at least what one band reads)
 * of `line` columns (even, at least padding + input extent along the line, and output extent *
 * stride + (taps - 1) * dilation + 2 for the word reads past the last tap). A transposed layout
 * has one band. Scratch: a plane per input channel up to four, 2 * min(4, channels) * plane_rows *
 * line bytes. */
typedef struct {
    int32_t band_rows;
    int32_t plane_rows;
    int32_t line;
    int32_t transposed;
} tp_dsp_dw_layout;

/* DEPTHWISE_CONV_2D over int16 planes, one per input channel (with depth multiplier m, output
 * channel c * m + j reads plane c). channels: the output words above, except that the first
 * holds the plain bias (0 without one) and, where the short requantization applies, the bias
 * and the channel's weights come doubled: the shift by left + 1 = 1 the short form applies to
 * the accumulator. packed_filter holds, output channel after output channel, the filter as the
 * planes see it (kw x kh when transposed): 3x3 at stride 1 or 2 along the line without dilation
 * along it as int16 pairs (w0, w1), (w1, w2) per filter line (low half first), any other as one
 * int32 word per tap. output may be input (depth multiplier 1) when the generator checked that
 * the kernel reads every input line before it is overwritten. */
void tp_depthwise_conv2d_s8_dsp(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input,
                                const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *channels,
                                const tp_dims *output_dims, int8_t *output, const tp_dsp_dw_layout *layout,
                                int8_t *scratch);

/* DEPTHWISE_CONV_2D with a depth multiplier m above 1: per input channel ic, a convolution of
 * that channel alone by its m filters (output channels ic * m .. ic * m + m - 1), on the matrix
 * kernel above. packed_filter: per input channel, its m filters of kh * kw taps (row by row) as
 * tp_dsp_gemm_s8 reads them, m rounded up to even (ceil(kh * kw / 4) words per filter, (m + m % 2)
 * filters); words: per input channel, the output words per pair of its filters
 * (TP_DSP_PAIR_WORDS * ceil(m / 2)), effective biases with the input offset folded in. scratch
 * (word-aligned): the two widened columns, 16 * ceil(kh * kw / 4) bytes, then a gather buffer of
 * 4 * ceil(kh * kw / 4) + 4 bytes. */
void tp_depthwise_conv2d_s8_dsp_mult(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                     const tp_dims *input_dims, const int8_t *input,
                                     const tp_dims *filter_dims, const int32_t *packed_filter, const int32_t *words,
                                     const tp_dims *output_dims, int8_t *output, int8_t *scratch);

/* FULLY_CONNECTED with symmetric weights (filter_offset 0). packed_filter holds the
 * [output_depth][accum_depth] filter's bytes as little-endian words, in the order the kernel
 * reads them: for each block of four rows r..r+3 (accum_depth words), for each whole word of
 * inputs 4j..4j+3 the four rows' words (row r first), then the rows' last accum_depth % 4
 * weights (row r first); then the rows past the last whole block, row-major, zero-padded to
 * a whole word. */
void tp_fully_connected_s8_dsp(const tp_fc_params *params, const tp_per_channel_requant *quant,
                               int32_t batches, int32_t accum_depth, int32_t output_depth,
                               const int8_t *input, const int32_t *packed_filter, const int32_t *effective_bias,
                               int8_t *output);

/* Its products, for other kernels over weights packed the same way (the LSTM's gates):
 * acc[0..3] = start[0..3] + dot(x, rows r..r+3) over k inputs for one block of four
 * rows at w (k words), returning the next block; and start + dot(x, one row-major row). */
const int32_t *tp_dsp_fc_block_1x4(const int8_t *x, const int32_t *w, int32_t k, const int32_t *start,
                                   int32_t acc[4]);
int32_t tp_dsp_fc_dot(const int8_t *x, const int8_t *w, int32_t k, int32_t start);

/* ADD (or SUB) of two inputs of the output's shape (no broadcast), count elements. scaled: the
 * generator's tables, 256 int32 per input indexed by value + 128, of what the reference adds
 * (input 2's negated for SUB); output_words: rounding, right shift and the mask of the sum's
 * sign (0 at right shift 0) of the output's short requantization, which the generator proved
 * free of overflow for every sum of two table entries. */
void tp_add_s8_dsp(const tp_add_params *params, const int32_t *scaled, const int32_t *output_words, int32_t count,
                   const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TP_DSP_H */
