/* The DSP CONV_2D over its own input (one arena buffer for input and output).
 *
 * Same row schedule as the reference in-place convolutions (tp_conv_inplace.h): each output
 * row is computed by the DSP kernel into a ring of rows and copied over the input once no
 * later output row reads what the copy overwrites. Pointwise convolutions go by blocks of
 * pixels instead. Batch 1 only. (The DSP depthwise kernel for depth multiplier 1 needs neither:
 * it reads each input line into its planes before any output lands on it, so it runs over its
 * input as it is; with a larger multiplier it goes row by row too.)
 */
#ifndef TP_DSP_INPLACE_H
#define TP_DSP_INPLACE_H

#include "tp_conv_inplace.h"
#include "tp_dsp.h"

/* buffer holds the input on entry and the output on return; scratch is tp_conv2d_s8_dsp's;
 * packed_filter and words are its packed filter and output words (tp_dsp.h). */
void tp_conv2d_s8_dsp_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                              const tp_dims *input_dims, const tp_dims *filter_dims, const int32_t *packed_filter,
                              const int32_t *words, const tp_dims *output_dims,
                              const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch);

/* A 1x1, stride-1, unpadded convolution over its own input, `block` pixels at a time (an even
 * number, so the matrix kernel's pixel pairs run across row ends): scratch holds one block of
 * output pixels, block * output_dims->c bytes, then (word-aligned) tp_conv2d_s8_dsp's columns. */
void tp_conv2d_s8_dsp_pointwise_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                                        const tp_dims *input_dims, const tp_dims *filter_dims,
                                        const int32_t *packed_filter,
                                        const int32_t *words, const tp_dims *output_dims, int32_t block,
                                        int8_t *buffer, int8_t *scratch);

/* DEPTHWISE_CONV_2D on planes (tp_depthwise_conv2d_s8_dsp) with a depth multiplier above 1 over
 * its own input, under the same row schedule: layout has lines along image rows (not transposed),
 * scratch holds its planes. */
void tp_depthwise_conv2d_s8_dsp_inplace(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                        const tp_dims *input_dims, const tp_dims *filter_dims,
                                        const int32_t *packed_filter, const int32_t *channels,
                                        const tp_dims *output_dims, const tp_dsp_dw_layout *layout,
                                        const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch);

/* DEPTHWISE_CONV_2D with a depth multiplier above 1 on the matrix kernel
 * (tp_depthwise_conv2d_s8_dsp_mult) over its own input, under the same row schedule; scratch is
 * tp_depthwise_conv2d_s8_dsp_mult's. */
void tp_depthwise_conv2d_s8_dsp_mult_inplace(const tp_depthwise_conv_params *params,
                                             const tp_per_channel_requant *quant, const tp_dims *input_dims,
                                             const tp_dims *filter_dims, const int32_t *packed_filter,
                                             const int32_t *words, const tp_dims *output_dims,
                                             const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring,
                                             int8_t *scratch);

#endif /* TP_DSP_INPLACE_H */
