/* UNIDIRECTIONAL_SEQUENCE_LSTM for cores with the Arm DSP extension (kernels/dsp/): the
 * reference kernel (tp_lstm.h) with its gates' matrix-vector products on SMLAD pairs, bit for
 * bit the same output. Everything around the products is the reference's tp_lstm_run.
 */
#ifndef TP_DSP_LSTM_H
#define TP_DSP_LSTM_H

#include "tp_lstm.h"

/* The weights as the generator packs them, per gate (TFLite's order, tp_lstm.h): each
 * [units][n] matrix in tp_fully_connected_s8_dsp's order (tp_dsp.h: blocks of four rows
 * interleaved by words, then the rows past the last block row-major), and the offsets folded
 * into per-unit biases: input_bias = bias + input_offset * sum(W_g row), recurrent_bias =
 * hidden_offset * sum(R_g row), so sum(x * W_g) + input_bias is the reference's accumulator. */
typedef struct {
    const int32_t *input_weights[4];     /* packed [units][input_size] */
    const int32_t *recurrent_weights[4]; /* packed [units][units] */
    const int32_t *input_bias[4];        /* [units] */
    const int32_t *recurrent_bias[4];    /* [units] */
} tp_lstm_dsp_weights;

/* As tp_unidirectional_sequence_lstm_s8, scratch TP_LSTM_SCRATCH_BYTES(units). */
void tp_unidirectional_sequence_lstm_s8_dsp(const tp_lstm_params *params, const tp_lstm_dsp_weights *weights,
                                            const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state,
                                            int16_t *cell_state, int8_t *output, int16_t *scratch);

#endif /* TP_DSP_LSTM_H */
