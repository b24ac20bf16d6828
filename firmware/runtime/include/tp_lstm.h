/* UNIDIRECTIONAL_SEQUENCE_LSTM in TFLite's integer form: int8 input, hidden state and output,
 * int8 weights, int32 biases, int16 cell state (what TFLite Micro evaluates as 8x8->16).
 *
 * Per time step, with x the input row and h, c the state of its batch row:
 *   gate_g = act_g(sat16(fc(x, W_g) + fc(h, R_g)))  g in input, forget, cell, output
 * where fc(v, W) = clamp16(requant(sum (v + offset) * W [+ bias])) lands in Q3.12, act is
 * sigmoid (tanh for the cell gate) on int16 with TFLite's interpolated table, giving Q0.15;
 *   c = clip(sat16(requant(forget * c) + requant(input * cell)))
 *   h = clamp8(requant(tanh(c) * output) + hidden zero point)
 * and h is also the step's output row. Every gate reads the h of the previous step.
 *
 * Batch rows are independent, so the kernel runs them one after the other whatever the
 * layout (time major [T][B][I] or batch major [B][T][I]); the result is TFLM's, which steps
 * all rows of a time step at once in the time-major case.
 *
 * The state starts every call from TFLM's reset value (h at the hidden zero point, c at 0):
 * each invocation is one independent sequence. hidden_state and cell_state are buffers of
 * batches * units the call overwrites; scratch holds TP_LSTM_SCRATCH_BYTES(units).
 */
#ifndef TP_LSTM_H
#define TP_LSTM_H

#include "tp_fixedpoint.h"
#include "tp_types.h"

/* Gate order of TFLite's LSTM operands. */
enum { TP_LSTM_INPUT_GATE = 0, TP_LSTM_FORGET_GATE = 1, TP_LSTM_CELL_GATE = 2, TP_LSTM_OUTPUT_GATE = 3 };

/* Three int16 vectors of `units`: the forget (then output), input and cell gates. */
#define TP_LSTM_SCRATCH_BYTES(units) (3 * (int32_t)(units) * (int32_t)sizeof(int16_t))

typedef struct {
    int32_t batches;
    int32_t time_steps;
    int32_t input_size;
    int32_t units;
    int32_t time_major; /* nonzero: input and output are [time][batch][...] */
} tp_lstm_dims;

typedef struct {
    int32_t input_offset;      /* minus the input zero point */
    int32_t hidden_offset;     /* minus the hidden state zero point */
    int32_t hidden_zero_point; /* h's reset value and the output gate product's offset */
    tp_requant input_fc[4];     /* per gate: x . W_g (+ bias) to Q3.12 */
    tp_requant recurrent_fc[4]; /* per gate: h . R_g to Q3.12 */
    tp_requant forget_mul;      /* Q0.15 forget gate x c -> c */
    tp_requant input_mul;       /* Q0.15 input gate x Q0.15 cell gate -> c */
    tp_requant output_mul;      /* Q0.15 tanh(c) x Q0.15 output gate -> h */
    int32_t cell_clip;          /* c is clamped to [-cell_clip, cell_clip]; negative: not clipped */
    int32_t cell_tanh_multiplier; /* tanh(c) input rescale: (c * multiplier + round) >> shift */
    int32_t cell_tanh_shift;
} tp_lstm_params;

typedef struct {
    const int8_t *input_weights[4];     /* [units][input_size] per gate */
    const int8_t *recurrent_weights[4]; /* [units][units] per gate */
    const int32_t *bias[4];             /* [units] per gate */
} tp_lstm_weights;

/* The gates' activations, TFLite's int16 LOGISTIC and TANH (power-of-two scales): sigmoid of a
 * Q3.12 input, and tanh of (x * multiplier + round) >> shift (3, 0 for Q3.12), both in Q0.15. */
int16_t tp_lstm_sigmoid_s16(int16_t x);
int16_t tp_lstm_tanh_s16(int16_t x, int32_t multiplier, int32_t shift);

/* A gate's pre-activation in Q3.12 from its two accumulators, input = sum (x + input_offset) *
 * W_g + bias and recurrent = sum (h + hidden_offset) * R_g (int32): each requantized and
 * saturated to int16, then their saturated sum. Shared by every kernel set. */
static inline int16_t tp_lstm_gate_sum(const tp_lstm_params *params, int32_t gate, int32_t input, int32_t recurrent)
{
    const tp_requant in_q = params->input_fc[gate];
    const tp_requant rec_q = params->recurrent_fc[gate];
    const int32_t from_input = tp_clamp(tp_requantize(input, in_q.multiplier, in_q.shift), INT16_MIN, INT16_MAX);
    const int32_t from_hidden = tp_clamp(tp_requantize(recurrent, rec_q.multiplier, rec_q.shift), INT16_MIN, INT16_MAX);
    return (int16_t)tp_clamp(from_input + from_hidden, INT16_MIN, INT16_MAX);
}

/* Writes out[u] = tp_lstm_gate_sum(params, gate, ...) of gate `gate` for every unit u, from the
 * step's input row x (input_size) and the previous hidden row h (units); ctx: the kernel's weights. */
typedef void (*tp_lstm_gate_fn)(const void *ctx, const tp_lstm_params *params, int32_t gate, int32_t input_size,
                                int32_t units, const int8_t *x, const int8_t *h, int16_t *out);

/* The LSTM around the gates' products: state reset, activations, cell and hidden updates, as
 * tp_unidirectional_sequence_lstm_s8 (which is this with the reference gate products). */
void tp_lstm_run(const tp_lstm_params *params, tp_lstm_gate_fn preactivation, const void *ctx,
                 const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state, int16_t *cell_state,
                 int8_t *output, int16_t *scratch);

void tp_unidirectional_sequence_lstm_s8(const tp_lstm_params *params, const tp_lstm_weights *weights,
                                        const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state,
                                        int16_t *cell_state, int8_t *output, int16_t *scratch);

#endif /* TP_LSTM_H */
