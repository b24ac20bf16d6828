/* TRANSPOSE_CONV for cores with the Arm DSP extension (kernels/dsp/), on tp_dsp.h's matrix kernel.
 *
 * Output row y takes filter rows fy = r, r + stride, r + 2 * stride, ... (r = (y + padding)
 * mod stride) from input rows (y + padding - fy) / stride: a stride-1 convolution per phase
 * (r_h, r_w) of the output, with the phase's sub-filter (every stride-th tap from r, in
 * reverse order so its taps read the input in ascending order). The generator packs each
 * phase's sub-filter and output words as tp_conv2d_s8_dsp's (tp_dsp.h), with the effective
 * bias of the sub-filter; taps outside the input get the input zero point, as there.
 */
#ifndef TP_DSP_TRANSPOSE_CONV_H
#define TP_DSP_TRANSPOSE_CONV_H

#include "tp_dsp.h"
#include "tp_transpose_conv.h"

/* Filter taps of phase r along an axis with `taps` taps at stride `stride`: r, r + stride, ... */
static inline int32_t tp_transpose_conv_phase_taps(int32_t taps, int32_t stride, int32_t r)
{
    return r < taps ? (taps - r + stride - 1) / stride : 0;
}

/* params, quant and the dims as for tp_transpose_conv2d_s8. packed_filter and words: the phases
 * one after the other, row phase major: per phase tp_dsp.h's packed filter of its sub-filter,
 * ceil(k / 4) words per output channel (rounded up to an even count) with k = taps_h * taps_w *
 * in_c, 1 word of zeros when the phase has no tap (stride above the filter size), and
 * TP_DSP_PAIR_WORDS per pair of output channels. scratch (word-aligned): two widened columns,
 * 16 * groups bytes, then 4 * groups bytes for gathering a column, for the largest phase's groups. */
void tp_transpose_conv2d_s8_dsp(const tp_conv_params *params, const tp_per_channel_requant *quant,
                                const tp_dims *input_dims, const int8_t *input, const tp_dims *filter_dims,
                                const int32_t *packed_filter, const int32_t *words, const tp_dims *output_dims,
                                int8_t *output, int8_t *scratch);

#endif /* TP_DSP_TRANSPOSE_CONV_H */
