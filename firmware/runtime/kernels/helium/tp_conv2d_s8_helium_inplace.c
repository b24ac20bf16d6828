/* CONV_2D for Helium over its own input: one output row at a time under the reference row
 * schedule (tp_conv_rows_inplace.c), or a 1x1 stride-1 convolution a block of pixels at a time. */
#include "tp_helium.h"

typedef struct {
    const tp_dims *input_dims;
    const tp_dims *filter_dims;
    const int8_t *packed_filter;
    const int32_t *words;
    int8_t *scratch;
} helium_conv_op;

static void helium_conv_row(const void *op, const tp_conv_params *row_params, const tp_dims *one_row,
                            const int8_t *buffer, int8_t *dst)
{
    const helium_conv_op *c = (const helium_conv_op *)op;
    tp_conv2d_s8_helium(row_params, c->input_dims, buffer, c->filter_dims, c->packed_filter, c->words, one_row, dst,
                        c->scratch);
}

void tp_conv2d_s8_helium_inplace(const tp_conv_params *params, const tp_dims *input_dims, const tp_dims *filter_dims,
                                 const int8_t *packed_filter, const int32_t *words, const tp_dims *output_dims,
                                 const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch)
{
    const helium_conv_op op = {input_dims, filter_dims, packed_filter, words, scratch};
    tp_conv_rows_inplace(params, input_dims, filter_dims, output_dims, rows, buffer, ring, helium_conv_row, &op);
}

void tp_conv2d_s8_helium_pointwise_inplace(const tp_conv_params *params, const tp_dims *input_dims,
                                           const tp_dims *filter_dims, const int8_t *packed_filter,
                                           const int32_t *words, const tp_dims *output_dims, int32_t block,
                                           int8_t *buffer, int8_t *scratch)
{
    const int32_t in_c = input_dims->c, out_c = output_dims->c;
    const int32_t pixels = output_dims->h * output_dims->w;
    /* Output pixels [p, p + n) overwrite input bytes [p * out_c, (p + n) * out_c): top-down those
     * are input pixels already read when out_c <= in_c; bottom-up, pixels not read again otherwise. */
    const int bottom_up = out_c > in_c;
    tp_dims input_block = {1, 1, block, in_c};
    tp_dims output_block = {1, 1, block, out_c};
    for (int32_t done = 0; done < pixels; done += block) {
        const int32_t n = pixels - done >= block ? block : pixels - done;
        const int32_t p = bottom_up ? pixels - done - n : done;
        input_block.w = output_block.w = n;
        tp_conv2d_s8_helium(params, &input_block, buffer + p * in_c, filter_dims, packed_filter, words, &output_block,
                            scratch, NULL);
        tp_helium_copy(buffer + p * out_c, scratch, n * out_c);
    }
}
