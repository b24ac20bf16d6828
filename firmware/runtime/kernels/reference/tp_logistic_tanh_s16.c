/* Reference int16 LOGISTIC and TANH (16x8): TFLite's interpolation in its sigmoid table (tp_lut.h). */
#include "tp_lut.h"

void tp_logistic_s16(const tp_sigmoid_s16_params *params, int32_t size, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = tp_logistic_value_s16(input[i], params->input_multiplier, params->input_shift);
    }
}

void tp_tanh_s16(const tp_sigmoid_s16_params *params, int32_t size, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < size; ++i) {
        output[i] = tp_tanh_value_s16(input[i], params->input_multiplier, params->input_shift);
    }
}
