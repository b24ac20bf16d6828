/* A 1x1, stride-1 CONV_2D over its own input, a block of pixels at a time: the matrix kernel
 * keeps its pixel pairs across row ends, and one block of output pixels is all the scratch. */
#include "tp_dsp_inplace.h"

#include <string.h>

void tp_conv2d_s8_dsp_pointwise_inplace(const tp_conv_params *params, const tp_per_channel_requant *quant,
                                        const tp_dims *input_dims, const tp_dims *filter_dims,
                                        const int32_t *packed_filter,
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
    int8_t *const columns = scratch + (block * out_c + 3) / 4 * 4;
    for (int32_t done = 0; done < pixels; done += block) {
        const int32_t n = pixels - done >= block ? block : pixels - done;
        const int32_t p = bottom_up ? pixels - done - n : done;
        input_block.w = output_block.w = n;
        tp_conv2d_s8_dsp(params, quant, &input_block, buffer + p * in_c, filter_dims, packed_filter, words,
                         &output_block, scratch, columns);
        memcpy(buffer + p * out_c, scratch, (size_t)(n * out_c));
    }
}
