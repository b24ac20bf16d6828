/* Reference UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell state
 * (tp_lstm.h), step for step TFLite Micro's integer LSTM: the same integer operations in the
 * same order, gate by gate, so every intermediate value and the output match bit for bit. */
#include "tp_lstm.h"

#include "tp_fixedpoint.h"

/* sigmoid(k / 24) in unsigned Q0.16 for k = 0..255 (the last entry saturated): the table
 * TFLite's int16 LOGISTIC and TANH interpolate in, tanh(x) being 2 * sigmoid(2x) - 1. */
static const uint16_t tp_sigmoid_q16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535
};

static inline int16_t sat16(int32_t x)
{
    return (int16_t)tp_clamp(x, INT16_MIN, INT16_MAX);
}

/* TFLite's int16 LOGISTIC on a Q3.12 input (multiplier 3, no shift): Q0.15 output. The input
 * times 3/4 indexes the table in steps of 2^9, interpolated linearly in between. */
int16_t tp_lstm_sigmoid_s16(int16_t x)
{
    const int32_t scaled = (int32_t)x * 3;
    const uint32_t magnitude = (uint32_t)(scaled < 0 ? -scaled : scaled);
    const uint32_t index = magnitude >> 9;
    uint32_t value;
    if (index >= 255u) {
        value = 0x7FFFu << 10;
    } else {
        const uint32_t low = tp_sigmoid_q16[index];
        const uint32_t high = tp_sigmoid_q16[index + 1];
        value = (low << 9) + (magnitude & 0x1FFu) * (high - low);
    }
    value = scaled >= 0 ? value + (1u << 9) : (1u << 25) - value + (1u << 9) - 1u;
    return (int16_t)(value >> 10);
}

/* TFLite's int16 TANH with its input rescale (x * multiplier + round) >> shift: Q0.15 output,
 * the table read at twice the sigmoid's pace. */
int16_t tp_lstm_tanh_s16(int16_t x, int32_t multiplier, int32_t shift)
{
    const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    const int32_t scaled = ((int32_t)x * multiplier + round) >> shift;
    const uint32_t magnitude = (uint32_t)(scaled < 0 ? -scaled : scaled);
    const uint32_t index = magnitude >> 8;
    int32_t value;
    if (index >= 255u) {
        value = 0xFFFF << 8;
    } else {
        const uint32_t low = tp_sigmoid_q16[index];
        const uint32_t high = tp_sigmoid_q16[index + 1];
        value = (int32_t)((low << 8) + (magnitude & 0xFFu) * (high - low));
    }
    value = scaled >= 0 ? value - (1 << 23) + (1 << 7) : -value + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(value >> 8);
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
