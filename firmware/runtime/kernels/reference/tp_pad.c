/* Reference PAD / PADV2, int8, constant fill, up to four dimensions. */
#include "tp_concat_pad.h"

#include <string.h>

static int32_t inside(int32_t index, int32_t before, int32_t extent)
{
    return index >= before && index < before + extent;
}

void tp_pad_s8(const tp_pad_params *params, const tp_dims *input_dims, const int8_t *input,
               int8_t *output)
{
    const tp_dims *before = &params->before;
    const tp_dims *after = &params->after;
    const int32_t out_n = before->n + input_dims->n + after->n;
    const int32_t out_h = before->h + input_dims->h + after->h;
    const int32_t out_w = before->w + input_dims->w + after->w;
    const int32_t out_c = before->c + input_dims->c + after->c;
    for (int32_t n = 0; n < out_n; ++n) {
        for (int32_t h = 0; h < out_h; ++h) {
            for (int32_t w = 0; w < out_w; ++w) {
                if (inside(n, before->n, input_dims->n) && inside(h, before->h, input_dims->h) &&
                    inside(w, before->w, input_dims->w)) {
                    const int32_t row =
                        ((n - before->n) * input_dims->h + (h - before->h)) * input_dims->w + (w - before->w);
                    memset(output, params->pad_value, (size_t)before->c);
                    memcpy(output + before->c, input + row * input_dims->c, (size_t)input_dims->c);
                    memset(output + before->c + input_dims->c, params->pad_value, (size_t)after->c);
                } else {
                    memset(output, params->pad_value, (size_t)out_c);
                }
                output += out_c;
            }
        }
    }
}
