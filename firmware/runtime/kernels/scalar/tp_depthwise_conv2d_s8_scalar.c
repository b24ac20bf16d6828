/* DEPTHWISE_CONV_2D (depth multiplier 1) for cores without the DSP extension (tp_scalar.h):
 * channel by channel, the input channel copied into a padded plane of unsigned bytes (x + 128,
 * the padding as the input zero point + 128, written once per call), then per block of four
 * output pixels each filter tap loaded once for the four: 3x3 filters at stride 1 or 2 without
 * dilation along rows straight from the plane (tp_scalar_dw3x3_s1/_s2), others in raster order
 * (narrow images waste no block ends) with their windows gathered for tp_scalar_dot4. */
#include "tp_scalar.h"

/* The windows of four output pixels whose first taps are at q[0..3], interleaved as
 * tp_scalar_dot4 reads them: tap after tap (rows `row_step` apart, taps `dilation` apart along a
 * row), the four pixels' values. */
static void gather_windows(const uint8_t *const q[4], int32_t kh, int32_t kw, int32_t row_step, int32_t dilation,
                           uint8_t *columns)
{
    const uint8_t *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    for (int32_t ky = 0; ky < kh; ++ky) {
        int32_t offset = ky * row_step;
        for (int32_t kx = 0; kx < kw; ++kx) {
            columns[0] = q0[offset];
            columns[1] = q1[offset];
            columns[2] = q2[offset];
            columns[3] = q3[offset];
            columns += 4;
            offset += dilation;
        }
    }
}

void tp_depthwise_conv2d_s8_scalar(const tp_depthwise_conv_params *params, const tp_per_channel_requant *quant,
                                   const tp_dims *input_dims, const int8_t *input,
                                   const tp_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const uint8_t *short_form, const tp_dims *output_dims, int8_t *output,
                                   int32_t plane_rows, int32_t plane_cols, uint8_t *scratch)
{
    const tp_conv_params *conv = &params->conv;
    const int32_t channels = input_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    const int32_t out_w = output_dims->w, pixels = output_dims->h * out_w;
    const int32_t row_step = conv->dilation.h * plane_cols, dilation = conv->dilation.w;
    const int32_t down = conv->stride.h * plane_cols, across = conv->stride.w;
    /* The input's part of the plane: rows and columns past what the windows read are left out. */
    const int32_t top = conv->padding.h, left = conv->padding.w;
    const int32_t rows = TP_MIN(input_dims->h, plane_rows - top), cols = TP_MIN(input_dims->w, plane_cols - left);
    const uint8_t pad = (uint8_t)(128 - conv->input_offset);
    uint8_t *columns = scratch + plane_rows * plane_cols;
    for (int32_t i = 0; i < plane_rows * plane_cols; ++i) {
        scratch[i] = pad;
    }
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        int8_t *out_image = output + b * pixels * channels;
        for (int32_t c = 0; c < channels; ++c) {
            for (int32_t y = 0; y < rows; ++y) {
                const uint8_t *src = (const uint8_t *)image + y * input_dims->w * channels + c;
                uint8_t *dst = scratch + (top + y) * plane_cols + left;
                for (int32_t x = 0; x < cols; ++x) {
                    dst[x] = (uint8_t)(*src ^ 0x80);
                    src += channels;
                }
            }
            const int8_t *w = filter + c * kh * kw;
            const int32_t multiplier = quant->multiplier[c], shift = quant->shift[c];
            if (kh == 3 && kw == 3 && dilation == 1 && (across == 1 || across == 2)) {
                /* Blocks of four pixels along a row straight from the plane; a short block's
                 * extra pixels read past the row (at most 6 bytes past the plane: into the
                 * windows' scratch) and are not stored. */
                for (int32_t oy = 0; oy < output_dims->h; ++oy) {
                    const uint8_t *line = scratch + oy * down;
                    int8_t *out = out_image + oy * out_w * channels + c;
                    for (int32_t ox = 0; ox < out_w; ox += 4) {
                        uint32_t acc[4] = {(uint32_t)bias[c], (uint32_t)bias[c], (uint32_t)bias[c], (uint32_t)bias[c]};
                        if (across == 1) {
                            tp_scalar_dw3x3_s1(line + ox, w, row_step, acc);
                        } else {
                            tp_scalar_dw3x3_s2(line + 2 * ox, w, row_step, acc);
                        }
                        tp_scalar_store(acc, TP_MIN(4, out_w - ox), short_form[c], multiplier, shift,
                                        conv->output_offset, &conv->activation, out + ox * channels, channels);
                    }
                }
                continue;
            }
            /* Other filters: blocks of four pixels in raster order, across row ends (a short last
             * block repeats its last pixel: computed, not stored), their windows gathered. */
            const uint8_t *row = scratch;
            int32_t ox = 0;
            for (int32_t pixel = 0; pixel < pixels; pixel += 4) {
                const int32_t count = TP_MIN(4, pixels - pixel);
                const uint8_t *q[4];
                for (int32_t p = 0; p < 4; ++p) {
                    q[p] = row + ox * across;
                    if (p + 1 < count && ++ox == out_w) {
                        ox = 0;
                        row += down;
                    }
                }
                if (++ox == out_w) {
                    ox = 0;
                    row += down;
                }
                uint32_t acc[4] = {(uint32_t)bias[c], (uint32_t)bias[c], (uint32_t)bias[c], (uint32_t)bias[c]};
                gather_windows(q, kh, kw, row_step, dilation, columns);
                tp_scalar_dot4(w, columns, kh * kw, acc);
                tp_scalar_store(acc, count, short_form[c], multiplier, shift, conv->output_offset, &conv->activation,
                                out_image + pixel * channels + c, channels);
            }
        }
    }
}
