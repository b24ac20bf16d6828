/* Row scheduling shared by the in-place convolutions (see tp_conv_inplace.h). */
#include "tp_conv_inplace.h"

#include <string.h>

void tp_conv_rows_inplace(const tp_conv_params *conv, const tp_dims *input_dims, const tp_dims *filter_dims,
                          const tp_dims *output_dims, const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring,
                          tp_conv_row_fn compute_row, const void *op)
{
    const int32_t out_rows = output_dims->h;
    const int32_t out_row_bytes = output_dims->w * output_dims->c;
    const int32_t in_row_bytes = input_dims->w * input_dims->c;
    const int32_t reach = (filter_dims->h - 1) * conv->dilation.h; /* input rows one output row spans, minus 1 */
    int32_t pending = 0; /* computed rows still in the ring */
    tp_conv_params row_params = *conv;
    tp_dims one_row = *output_dims;
    one_row.h = 1;

    for (int32_t step = 0; step < out_rows; ++step) {
        const int32_t row = rows->bottom_up ? out_rows - 1 - step : step;
        row_params.padding.h = conv->padding.h - row * conv->stride.h;
        compute_row(op, &row_params, &one_row, buffer, ring + (row % rows->ring_rows) * out_row_bytes);
        ++pending;
        const int32_t last_step = step == out_rows - 1;
        while (pending > 0) {
            /* Oldest pending row; its copy must not reach an input row a later output row reads. */
            if (rows->bottom_up) {
                const int32_t q = row + pending - 1;
                const int32_t first_in = q * out_row_bytes / in_row_bytes;
                const int32_t last_needed = (row - 1) * conv->stride.h - conv->padding.h + reach;
                if (!last_step && first_in <= last_needed) {
                    break;
                }
                memcpy(buffer + q * out_row_bytes, ring + (q % rows->ring_rows) * out_row_bytes,
                       (size_t)out_row_bytes);
            } else {
                const int32_t q = row - pending + 1;
                const int32_t last_in = ((q + 1) * out_row_bytes - 1) / in_row_bytes;
                const int32_t first_needed = (row + 1) * conv->stride.h - conv->padding.h;
                if (!last_step && last_in >= first_needed) {
                    break;
                }
                memcpy(buffer + q * out_row_bytes, ring + (q % rows->ring_rows) * out_row_bytes,
                       (size_t)out_row_bytes);
            }
            --pending;
        }
    }
}
