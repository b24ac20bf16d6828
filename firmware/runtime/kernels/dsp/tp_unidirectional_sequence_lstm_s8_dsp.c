/* UNIDIRECTIONAL_SEQUENCE_LSTM for the DSP extension: the reference's tp_lstm_run with the
 * gates' products on SMLAD. Four units per block share each unpacked word of x (or h), their
 * weights interleaved into aligned words at generation time (tp_dsp_lstm.h): per word 3 loads,
 * 10 unpacks and 8 SMLADs do 16 MACs. The offsets are folded into the biases, exact integer
 * arithmetic (SMLAD wraps modulo 2^32 like the reference's int32 sums): the same accumulators,
 * then the reference's tp_lstm_gate_sum. */
#include "tp_dsp_lstm.h"

#include "tp_dsp_simd.h"

/* acc[0..3] += dot(v, the four rows' words at w) over one word of v. */
#define TP_LSTM_WORD_1X4(v, w, a0, a1, a2, a3)                                                      \
    do {                                                                                            \
        const int32_t vw_ = tp_read_s8x4(v);                                                        \
        const int32_t ve_ = tp_sxtb16(vw_), vo_ = tp_sxtb16_ror8(vw_);                              \
        const int32_t w0_ = (w)[0], w1_ = (w)[1], w2_ = (w)[2], w3_ = (w)[3];                       \
        a0 = tp_smlad(ve_, tp_sxtb16(w0_), a0);                                                     \
        a0 = tp_smlad(vo_, tp_sxtb16_ror8(w0_), a0);                                                \
        a1 = tp_smlad(ve_, tp_sxtb16(w1_), a1);                                                     \
        a1 = tp_smlad(vo_, tp_sxtb16_ror8(w1_), a1);                                                \
        a2 = tp_smlad(ve_, tp_sxtb16(w2_), a2);                                                     \
        a2 = tp_smlad(vo_, tp_sxtb16_ror8(w2_), a2);                                                \
        a3 = tp_smlad(ve_, tp_sxtb16(w3_), a3);                                                     \
        a3 = tp_smlad(vo_, tp_sxtb16_ror8(w3_), a3);                                                \
    } while (0)

/* acc[i] = bias[i] + dot(v, row i of a block of four) over k values, the block's weights at w
 * (k words); returns the next block. Not scheduled: GCC's first pass hoists loads into spills. */
__attribute__((noinline, optimize("no-schedule-insns"))) static const int32_t *tp_lstm_block_1x4(
    const int8_t *v, const int32_t *w, int32_t k, const int32_t *bias, int32_t acc[4])
{
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    const int8_t *const v_end = v + (k & ~7);
    while (v != v_end) {
        TP_LSTM_WORD_1X4(v, w, a0, a1, a2, a3);
        TP_LSTM_WORD_1X4(v + 4, w + 4, a0, a1, a2, a3);
        v += 8;
        w += 8;
    }
    if (k & 4) {
        TP_LSTM_WORD_1X4(v, w, a0, a1, a2, a3);
        v += 4;
        w += 4;
    }
    const int32_t tail = k & 3;
    const int8_t *const wt = (const int8_t *)w;
    for (int32_t n = 0; n < tail; ++n) {
        const int32_t value = v[n];
        a0 += value * wt[n];
        a1 += value * wt[tail + n];
        a2 += value * wt[2 * tail + n];
        a3 += value * wt[3 * tail + n];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w + tail;
}

/* bias + dot(v, one row-major row) over k values. */
static int32_t tp_lstm_dot(const int8_t *v, const int8_t *w, int32_t k, int32_t bias)
{
    int32_t a = bias;
    for (int32_t n = k >> 2; n > 0; --n) {
        const int32_t vw = tp_read_s8x4(v), ww = tp_read_s8x4(w);
        v += 4;
        w += 4;
        a = tp_smlad(tp_sxtb16(vw), tp_sxtb16(ww), a);
        a = tp_smlad(tp_sxtb16_ror8(vw), tp_sxtb16_ror8(ww), a);
    }
    for (int32_t n = k & 3; n > 0; --n) {
        a += *v++ * *w++;
    }
    return a;
}

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
        w = tp_lstm_block_1x4(x, w, input_size, input_bias + u, from_input);
        r = tp_lstm_block_1x4(h, r, units, recurrent_bias + u, from_hidden);
        for (int32_t i = 0; i < 4; ++i) {
            out[u + i] = tp_lstm_gate_sum(params, gate, from_input[i], from_hidden[i]);
        }
    }
    const int8_t *w_row = (const int8_t *)w; /* the rows past the last block, row-major */
    const int8_t *r_row = (const int8_t *)r;
    for (; u < units; ++u) {
        out[u] = tp_lstm_gate_sum(params, gate, tp_lstm_dot(x, w_row, input_size, input_bias[u]),
                                  tp_lstm_dot(h, r_row, units, recurrent_bias[u]));
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
