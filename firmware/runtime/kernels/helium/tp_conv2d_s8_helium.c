/* CONV_2D for Helium: the matrix kernel over two output pixels at a time. A 1x1 convolution's
 * column is its input pixel, read where it is; any other filter's column is gathered (im2col)
 * into the scratch, padded to whole 16-byte chunks so the matrix kernel takes no partial chunk
 * (the filter's zero padding multiplies the bytes past k away). */
#include "tp_helium.h"

#include "tp_fixedpoint.h"

/* rows runs of n bytes, row_step apart from src, one after another into dst: the copy loop of
 * tp_helium_copy inside a loop over the runs. */
static inline void tp_helium_gather_rows(int8_t *dst, const int8_t *src, int32_t n, int32_t rows, int32_t row_step)
{
    const int8_t *s;
    int8_t *d;
    __asm__ volatile("1:\n\t"
                     "mov %[s], %[src]\n\t"
                     "mov %[d], %[dst]\n\t"
                     "wlstp.8 lr, %[n], 3f\n"
                     "2:\n\t"
                     "vldrb.8 q0, [%[s]], #16\n\t"
                     "vstrb.8 q0, [%[d]], #16\n\t"
                     "letp lr, 2b\n"
                     "3:\n\t"
                     "add %[src], %[src], %[step]\n\t"
                     "add %[dst], %[dst], %[n]\n\t"
                     "subs %[rows], %[rows], #1\n\t"
                     "bne 1b"
                     : [src] "+r"(src), [dst] "+r"(dst), [rows] "+r"(rows), [s] "=&r"(s), [d] "=&r"(d)
                     : [n] "r"(n), [step] "r"(row_step)
                     : "q0", "lr", "memory", "cc");
}

/* The column of output pixel (oy, ox) into col: kh * kw * in_c input values in filter order,
 * taps in the padding given pad, the input zero point (which the effective bias turns into 0). */
static void tp_helium_im2col(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *image,
                             const tp_dims *filter_dims, int32_t oy, int32_t ox, int8_t pad, int8_t *col)
{
    const int32_t channels = input_dims->c, kw = filter_dims->w, n = kw * channels;
    const int32_t y0 = oy * params->stride.h - params->padding.h;
    const int32_t x0 = ox * params->stride.w - params->padding.w;
    const int32_t row_step = params->dilation.h * input_dims->w * channels;
    if (params->dilation.w == 1 && x0 >= 0 && x0 + kw <= input_dims->w && y0 >= 0 &&
        y0 + (filter_dims->h - 1) * params->dilation.h < input_dims->h) {
        /* Every tap inside (most pixels): each filter row is one run of the image. */
        tp_helium_gather_rows(col, image + (y0 * input_dims->w + x0) * channels, n, filter_dims->h, row_step);
        return;
    }
    const int32_t fx_begin = tp_conv_tap_begin(x0, params->dilation.w);
    const int32_t fx_end = TP_MAX(fx_begin, tp_conv_tap_end(x0, params->dilation.w, input_dims->w, kw));
    for (int32_t fy = 0, y = y0; fy < filter_dims->h; ++fy, y += params->dilation.h, col += n) {
        if (y < 0 || y >= input_dims->h) {
            tp_helium_fill(col, pad, n);
            continue;
        }
        const int8_t *line = image + y * input_dims->w * channels;
        tp_helium_fill(col, pad, fx_begin * channels);
        if (params->dilation.w == 1) {
            tp_helium_copy(col + fx_begin * channels, line + (x0 + fx_begin) * channels, (fx_end - fx_begin) * channels);
        } else {
            for (int32_t fx = fx_begin; fx < fx_end; ++fx) {
                tp_helium_copy(col + fx * channels, line + (x0 + fx * params->dilation.w) * channels, channels);
            }
        }
        tp_helium_fill(col + fx_end * channels, pad, (kw - fx_end) * channels);
    }
}

void tp_conv2d_s8_helium(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *input,
                         const tp_dims *filter_dims, const int8_t *packed_filter, const int32_t *words,
                         const tp_dims *output_dims, int8_t *output, int8_t *scratch)
{
    const int32_t channels = input_dims->c, k = filter_dims->h * filter_dims->w * channels;
    const int32_t out_w = output_dims->w, out_c = output_dims->c, pixels = output_dims->h * out_w;
    /* A 1x1 filter has no padding, but its in-place row calls move the top one (tp_conv_inplace.h). */
    const int pointwise = filter_dims->h == 1 && filter_dims->w == 1;
    const int32_t col_bytes = pointwise ? k : (k + 15) / 16 * 16;
    const int8_t pad = (int8_t)(-params->input_offset);
    const tp_helium_output_stage stage = {words + TP_HELIUM_WORDS_HEADER, params->output_offset, params->activation,
                                          words[0]};

    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *image = input + b * input_dims->h * input_dims->w * channels;
        int8_t *out = output + b * pixels * out_c;
        if (pointwise && params->stride.h == 1 && params->stride.w == 1) {
            /* The input pixels are the columns, one after another. */
            tp_helium_gemm_s8_columns(image - (params->padding.h * input_dims->w + params->padding.w) * channels,
                                      pixels, k, packed_filter, out_c, &stage, out);
            continue;
        }
        int32_t oy = 0, ox = 0; /* of the next column */
        for (int32_t p = 0; p < pixels; p += 2) {
            const int8_t *cols[2] = {NULL, NULL};
            for (int32_t i = 0; i < 2 && p + i < pixels; ++i) {
                if (pointwise) {
                    cols[i] = image + ((oy * params->stride.h - params->padding.h) * input_dims->w +
                                       ox * params->stride.w - params->padding.w) * channels;
                } else {
                    tp_helium_im2col(params, input_dims, image, filter_dims, oy, ox, pad, scratch + i * col_bytes);
                    cols[i] = scratch + i * col_bytes;
                }
                if (++ox == out_w) {
                    ox = 0;
                    ++oy;
                }
            }
            tp_helium_gemm_s8(cols[0], cols[1], col_bytes, packed_filter, out_c, &stage, out + p * out_c,
                              out + (p + 1) * out_c);
        }
    }
}
