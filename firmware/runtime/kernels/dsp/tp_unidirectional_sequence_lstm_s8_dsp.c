/* UNIDIRECTIONAL_SEQUENCE_LSTM for the DSP extension: the reference's tp_lstm_run with the
 * gates' products on SMLAD, tp_fully_connected_s8_dsp's own (tp_dsp.h), over the weights packed
 * as its filter at generation time (tp_dsp_lstm.h). The offsets are folded into the biases,
 * exact integer arithmetic: the reference's accumulators, then its tp_lstm_gate_sum. */
#include "tp_dsp_lstm.h"

#include "tp_dsp.h"

/* The tp_lstm_gate_fn of the packed weights (ctx: the tp_lstm_dsp_weights). */
static void tp_lstm_dsp_gate(const void *ctx, const tp_lstm_params *params, int32_t gate, int32_t input_size,
                             int32_t units, const int8_t *x, const int8_t *h, int16_t *out)
{
    const tp_lstm_dsp_weights *weights = (const tp_lstm_dsp_weights *)ctx;
    const int32_t *w = weights->input_weights[gate];
    const int32_t *r = weights->recurrent_weights[gate];
    const int32_t *input_bias = weights->input_bias[gate];
    const int32_t *recurrent_bias = weights->recurrent_bias[gate];
    int32_t u = 0;
    for (; u + 4 <= units; u += 4) {
        int32_t from_input[4], from_hidden[4];
        w = tp_dsp_fc_block_1x4(x, w, input_size, input_bias + u, from_input);
        r = tp_dsp_fc_block_1x4(h, r, units, recurrent_bias + u, from_hidden);
        for (int32_t i = 0; i < 4; ++i) {
            out[u + i] = tp_lstm_gate_sum(params, gate, from_input[i], from_hidden[i]);
        }
    }
    const int8_t *w_row = (const int8_t *)w; /* the rows past the last block, row-major */
    const int8_t *r_row = (const int8_t *)r;
    for (; u < units; ++u) {
        out[u] = tp_lstm_gate_sum(params, gate, tp_dsp_fc_dot(x, w_row, input_size, input_bias[u]),
                                  tp_dsp_fc_dot(h, r_row, units, recurrent_bias[u]));
        w_row += input_size;
        r_row += units;
    }
}

void tp_unidirectional_sequence_lstm_s8_dsp(const tp_lstm_params *params, const tp_lstm_dsp_weights *weights,
                                            const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state,
                                            int16_t *cell_state, int8_t *output, int16_t *scratch)
{
    tp_lstm_run(params, tp_lstm_dsp_gate, weights, dims, input, hidden_state, cell_state, output, scratch);
}
