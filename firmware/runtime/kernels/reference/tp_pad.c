/* Reference PAD / PADV2, int8 and int16, constant fill, up to four dimensions. */
#include "tp_concat_pad.h"

#include <string.h>

static int32_t inside(int32_t index, int32_t before, int32_t extent)
{
    return index >= before && index < before + extent;
}

/* `count` copies of the fill value; memset serves int8, int16 is written element by element. */
static uint8_t *fill(const tp_pad_params *params, uint8_t *output, int32_t count)
{
    if (params->element_size == 1) {
        memset(output, (int8_t)params->pad_value, (size_t)count);
        return output + count;
    }
    for (int32_t i = 0; i < count; ++i) {
        memcpy(output + i * 2, &params->pad_value, 2);
    }
    return output + count * 2;
}

void tp_pad(const tp_pad_params *params, const tp_dims *input_dims, const void *input,
               void *output)
{
    const tp_dims *before = &params->before;
    const tp_dims *after = &params->after;
    const int32_t element_size = params->element_size;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const int32_t out_n = before->n + input_dims->n + after->n;
    const int32_t out_h = before->h + input_dims->h + after->h;
    const int32_t out_w = before->w + input_dims->w + after->w;
    const int32_t out_c = before->c + input_dims->c + after->c;
    const size_t row_bytes = (size_t)(input_dims->c * element_size);
    for (int32_t n = 0; n < out_n; ++n) {
        for (int32_t h = 0; h < out_h; ++h) {
            for (int32_t w = 0; w < out_w; ++w) {
                if (inside(n, before->n, input_dims->n) && inside(h, before->h, input_dims->h) &&
                    inside(w, before->w, input_dims->w)) {
                    const int32_t row =
                        ((n - before->n) * input_dims->h + (h - before->h)) * input_dims->w + (w - before->w);
                    out = fill(params, out, before->c);
                    memcpy(out, in + (size_t)row * row_bytes, row_bytes);
                    out = fill(params, out + row_bytes, after->c);
                } else {
                    out = fill(params, out, out_c);
                }
            }
        }
    }
}
