/* Reference UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell state
 * (tp_lstm.h), step for step TFLite Micro's integer LSTM: the same integer operations in the
 * same order, gate by gate, so every intermediate value and the output match bit for bit. */
#include "tp_lstm.h"

#include "tp_fixedpoint.h"
#include "tp_lut.h"

static inline int16_t sat16(int32_t x)
{
    return (int16_t)tp_clamp(x, INT16_MIN, INT16_MAX);
}

/* TFLite's int16 LOGISTIC on a Q3.12 input (its power-of-two case: multiplier 3, no shift). */
int16_t tp_lstm_sigmoid_s16(int16_t x)
{
    return tp_logistic_value_s16(x, 3, 0);
}

/* TFLite's int16 TANH with its input rescale (x * multiplier + round) >> shift. */
int16_t tp_lstm_tanh_s16(int16_t x, int32_t multiplier, int32_t shift)
{
    return tp_tanh_value_s16(x, multiplier, shift);
}

/* One gate over the step's input row x and previous hidden row h, before its activation
 * (a tp_lstm_gate_fn; ctx is the tp_lstm_weights). */
static void gate_preactivation(const void *ctx, const tp_lstm_params *params, int32_t gate, int32_t input_size,
                               int32_t units, const int8_t *x, const int8_t *h, int16_t *out)
{
    const tp_lstm_weights *weights = (const tp_lstm_weights *)ctx;
    const int8_t *w = weights->input_weights[gate];
    const int8_t *r = weights->recurrent_weights[gate];
    const int32_t *bias = weights->bias[gate];
    for (int32_t u = 0; u < units; ++u) {
        int32_t acc = 0;
        for (int32_t i = 0; i < input_size; ++i) {
            acc += (int32_t)w[u * input_size + i] * (x[i] + params->input_offset);
        }
        acc += bias[u];
        int32_t rec = 0;
        for (int32_t j = 0; j < units; ++j) {
            rec += (int32_t)r[u * units + j] * (h[j] + params->hidden_offset);
        }
        out[u] = tp_lstm_gate_sum(params, gate, acc, rec);
    }
}

static void sigmoid_gate(tp_lstm_gate_fn preactivation, const void *ctx, const tp_lstm_params *params, int32_t gate,
                         int32_t input_size, int32_t units, const int8_t *x, const int8_t *h, int16_t *out)
{
    preactivation(ctx, params, gate, input_size, units, x, h, out);
    for (int32_t u = 0; u < units; ++u) {
        out[u] = tp_lstm_sigmoid_s16(out[u]);
    }
}

static inline int32_t mul_requant(int32_t a, int32_t b, tp_requant q)
{
    return tp_requantize(a * b, q.multiplier, q.shift);
}

void tp_unidirectional_sequence_lstm_s8(const tp_lstm_params *params, const tp_lstm_weights *weights,
                                        const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state,
                                        int16_t *cell_state, int8_t *output, int16_t *scratch)
{
    tp_lstm_run(params, gate_preactivation, weights, dims, input, hidden_state, cell_state, output, scratch);
}

void tp_lstm_run(const tp_lstm_params *params, tp_lstm_gate_fn preactivation, const void *ctx,
                 const tp_lstm_dims *dims, const int8_t *input, int8_t *hidden_state, int16_t *cell_state,
                 int8_t *output, int16_t *scratch)
{
    const int32_t units = dims->units;
    const int32_t input_size = dims->input_size;
    /* Element strides of one time step and one batch row, in the input and in the output. */
    const int32_t in_time = dims->time_major ? dims->batches * input_size : input_size;
    const int32_t in_batch = dims->time_major ? input_size : dims->time_steps * input_size;
    const int32_t out_time = dims->time_major ? dims->batches * units : units;
    const int32_t out_batch = dims->time_major ? units : dims->time_steps * units;
    int16_t *forget = scratch; /* then the output gate */
    int16_t *in_gate = scratch + units;
    int16_t *cell_gate = scratch + 2 * units;

    for (int32_t b = 0; b < dims->batches; ++b) {
        int8_t *h = hidden_state + b * units;
        int16_t *c = cell_state + b * units;
        for (int32_t u = 0; u < units; ++u) {
            h[u] = (int8_t)params->hidden_zero_point;
            c[u] = 0;
        }
        for (int32_t t = 0; t < dims->time_steps; ++t) {
            const int8_t *x = input + b * in_batch + t * in_time;
            sigmoid_gate(preactivation, ctx, params, TP_LSTM_FORGET_GATE, input_size, units, x, h, forget);
            sigmoid_gate(preactivation, ctx, params, TP_LSTM_INPUT_GATE, input_size, units, x, h, in_gate);
            preactivation(ctx, params, TP_LSTM_CELL_GATE, input_size, units, x, h, cell_gate);
            for (int32_t u = 0; u < units; ++u) {
                /* The cell gate's tanh takes Q3.12 as it is (multiplier 3, no shift). */
                cell_gate[u] = tp_lstm_tanh_s16(cell_gate[u], 3, 0);
                const int32_t kept = sat16(mul_requant(forget[u], c[u], params->forget_mul));
                const int32_t added = sat16(mul_requant(in_gate[u], cell_gate[u], params->input_mul));
                int32_t updated = sat16(kept + added);
                if (params->cell_clip >= 0) {
                    updated = tp_clamp(updated, -params->cell_clip, params->cell_clip);
                }
                c[u] = (int16_t)updated;
            }
            int16_t *out_gate = forget;
            sigmoid_gate(preactivation, ctx, params, TP_LSTM_OUTPUT_GATE, input_size, units, x, h, out_gate);
            int8_t *y = output + b * out_batch + t * out_time;
            for (int32_t u = 0; u < units; ++u) {
                const int32_t squashed =
                    tp_lstm_tanh_s16(c[u], params->cell_tanh_multiplier, params->cell_tanh_shift);
                const int32_t hidden =
                    mul_requant(squashed, out_gate[u], params->output_mul) + params->hidden_zero_point;
                h[u] = (int8_t)tp_clamp(hidden, INT8_MIN, INT8_MAX);
                y[u] = h[u];
            }
        }
    }
}
