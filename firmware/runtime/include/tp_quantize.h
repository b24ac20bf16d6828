/* QUANTIZE and DEQUANTIZE: int8 / int16 rescaling, and the float32 boundaries. */
#ifndef TP_QUANTIZE_H
#define TP_QUANTIZE_H

#include "tp_types.h"

/* int8 -> int8 with a new scale and zero point. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    tp_requant requant; /* input_scale / output_scale */
} tp_requantize_params;

void tp_requantize_s8(const tp_requantize_params *params, int32_t size, const int8_t *input,
                      int8_t *output);

/* int16 -> int8, int32 or int16 and int8 or int32 -> int16, the same rescale (TFLM's
 * Requantize) saturated to the output's type. */
void tp_requantize_s16_s8(const tp_requantize_params *params, int32_t size, const int16_t *input,
                          int8_t *output);
void tp_requantize_s16_s32(const tp_requantize_params *params, int32_t size, const int16_t *input,
                           int32_t *output);
void tp_requantize_s16_s16(const tp_requantize_params *params, int32_t size, const int16_t *input,
                           int16_t *output);
void tp_requantize_s8_s16(const tp_requantize_params *params, int32_t size, const int8_t *input,
                          int16_t *output);
void tp_requantize_s32_s16(const tp_requantize_params *params, int32_t size, const int32_t *input,
                           int16_t *output);

/* float32 -> int8 / int16: round(x / scale) + zero_point, ties away from zero, saturated. */
void tp_quantize_f32_s8(float scale, int32_t zero_point, int32_t size, const float *input,
                        int8_t *output);
void tp_quantize_f32_s16(float scale, int32_t zero_point, int32_t size, const float *input,
                         int16_t *output);

/* int8 / int16 -> float32: scale * (q - zero_point), one float multiply. */
void tp_dequantize_s8_f32(float scale, int32_t zero_point, int32_t size, const int8_t *input,
                          float *output);
void tp_dequantize_s16_f32(float scale, int32_t zero_point, int32_t size, const int16_t *input,
                           float *output);

#endif /* TP_QUANTIZE_H */
