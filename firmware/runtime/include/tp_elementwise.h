/* Elementwise int8 kernels: binary operators with broadcast (ADD, SUB, MUL,
 * MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU) and the unary activations RELU,
 * RELU6, LEAKY_RELU and HARD_SWISH; ADD, SUB, MUL and LEAKY_RELU also int16 (16x8).
 */
#ifndef TP_ELEMENTWISE_H
#define TP_ELEMENTWISE_H

#include "tp_fixedpoint.h"
#include "tp_types.h"

/* How a binary operator walks its operands: the NHWC output dims, and for each
 * input the element step along every output dim (0 where that input is
 * broadcast). Same-shape operands have plain contiguous strides. */
typedef struct {
    tp_dims output;
    tp_dims input1_stride;
    tp_dims input2_stride;
} tp_broadcast;

/* The walk every binary kernel shares: output[i] = element(params, a, b) for the
 * operand codes a and b (of type `type`) under output element i, in NHWC order. A
 * macro rather than a function taking a pointer, so that `element` (a static
 * function) is inlined. */
#define TP_BROADCAST_EACH_T(type, shape, input1, input2, output, element, params)                      \
    do {                                                                                               \
        const tp_dims *s1_ = &(shape)->input1_stride;                                                  \
        const tp_dims *s2_ = &(shape)->input2_stride;                                                  \
        type *out_ = (output);                                                                         \
        for (int32_t n_ = 0; n_ < (shape)->output.n; ++n_) {                                           \
            for (int32_t h_ = 0; h_ < (shape)->output.h; ++h_) {                                       \
                for (int32_t w_ = 0; w_ < (shape)->output.w; ++w_) {                                   \
                    const type *in1_ = (input1) + n_ * s1_->n + h_ * s1_->h + w_ * s1_->w;             \
                    const type *in2_ = (input2) + n_ * s2_->n + h_ * s2_->h + w_ * s2_->w;             \
                    for (int32_t c_ = 0; c_ < (shape)->output.c; ++c_) {                               \
                        *out_++ = (type)element((params), in1_[c_ * s1_->c], in2_[c_ * s2_->c]);       \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    } while (0)

/* The int8 walk. */
#define TP_BROADCAST_EACH(shape, input1, input2, output, element, params)                              \
    TP_BROADCAST_EACH_T(int8_t, shape, input1, input2, output, element, params)

/* ADD and SUB: both inputs are brought to a common scale with 2^left_shift
 * headroom, added (or subtracted), then rescaled to the output. */
typedef struct {
    int32_t input1_offset; /* minus the input zero points */
    int32_t input2_offset;
    int32_t output_offset; /* the output zero point */
    int32_t left_shift;
    tp_requant input1;     /* multipliers < 1, shift <= 0 */
    tp_requant input2;
    tp_requant output;
    tp_activation activation;
} tp_add_params;

/* One ADD (sign 1) or SUB (sign -1) element of either width, clamped: both operands
 * to a common scale with left_shift bits of headroom, combined, rescaled to the output. */
static inline int32_t tp_add_sub_element(const tp_add_params *params, int32_t a, int32_t b, int32_t sign)
{
    const int32_t shifted1 = tp_shift_left(a + params->input1_offset, params->left_shift);
    const int32_t shifted2 = tp_shift_left(b + params->input2_offset, params->left_shift);
    const int32_t scaled1 = tp_requantize_smaller_than_one(shifted1, params->input1.multiplier, params->input1.shift);
    const int32_t scaled2 = tp_requantize_smaller_than_one(shifted2, params->input2.multiplier, params->input2.shift);
    const int32_t result = tp_requantize_smaller_than_one(scaled1 + sign * scaled2, params->output.multiplier,
                                                          params->output.shift) +
                           params->output_offset;
    return tp_clamp(result, params->activation.min, params->activation.max);
}

void tp_add_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output);

void tp_sub_s8(const tp_add_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output);

/* ADD and SUB with int16 operands (16x8; left_shift 15 as TFLM), with the same 4-D broadcast. */
void tp_add_s16(const tp_add_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output);

void tp_sub_s16(const tp_add_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output);

/* MUL: the product of the offset inputs, rescaled once. */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    tp_requant output;
    tp_activation activation;
} tp_mul_params;

/* One MUL element of either width, clamped (int16 products still fit in int32). */
static inline int32_t tp_mul_element(const tp_mul_params *params, int32_t a, int32_t b)
{
    const int32_t product = (a + params->input1_offset) * (b + params->input2_offset);
    const int32_t scaled =
        tp_requantize(product, params->output.multiplier, params->output.shift) + params->output_offset;
    return tp_clamp(scaled, params->activation.min, params->activation.max);
}

void tp_mul_s8(const tp_mul_params *params, const tp_broadcast *shape,
               const int8_t *input1, const int8_t *input2, int8_t *output);

/* MUL with int16 operands (16x8: every zero point 0). */
void tp_mul_s16(const tp_mul_params *params, const tp_broadcast *shape,
                const int16_t *input1, const int16_t *input2, int16_t *output);

/* RELU: rescale to the output, then clamp at the output's zero. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_offset;
    tp_requant requant;
    tp_activation activation;
} tp_relu_params;

void tp_relu_s8(const tp_relu_params *params, int32_t size, const int8_t *input, int8_t *output);

/* RELU6: a clamp in the input's quantized domain; the values are not rescaled. */
void tp_relu6_s8(int32_t lower, int32_t upper, int32_t size, const int8_t *input, int8_t *output);

/* LEAKY_RELU: one rescale for inputs at or above the zero point, one with alpha
 * folded in for those below. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_offset;
    tp_requant identity;
    tp_requant alpha;
} tp_leaky_relu_params;

/* One LEAKY_RELU element of either width, before the clamp to the output type. */
static inline int32_t tp_leaky_relu_element(const tp_leaky_relu_params *params, int32_t x)
{
    const int32_t centered = x - params->input_zero_point;
    /* Alpha may be negative or above 1, so the branch is on the sign, not a max. */
    const tp_requant *requant = centered >= 0 ? &params->identity : &params->alpha;
    return tp_requantize(centered, requant->multiplier, requant->shift) + params->output_offset;
}

void tp_leaky_relu_s8(const tp_leaky_relu_params *params, int32_t size, const int8_t *input,
                      int8_t *output);

void tp_leaky_relu_s16(const tp_leaky_relu_params *params, int32_t size, const int16_t *input,
                       int16_t *output);

/* HARD_SWISH: x * relu6(x + 3) / 6 in 16-bit fixed point. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int16_t output_multiplier; /* Q15 */
    int32_t output_exponent;   /* <= 0 */
    int16_t reluish_multiplier;
    int32_t reluish_exponent;
} tp_hard_swish_params;

void tp_hard_swish_s8(const tp_hard_swish_params *params, int32_t size, const int8_t *input,
                      int8_t *output);

/* MAXIMUM and MINIMUM: the larger (smaller) of the two raw int8 codes. Nothing is
 * rescaled: TFLite gives both inputs and the output one quantization, and its
 * reference compares the codes as they are even when they differ. */
void tp_maximum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output);

void tp_minimum_s8(const tp_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output);

/* SQUARED_DIFFERENCE: both inputs brought to a common scale with 2^left_shift
 * headroom (as ADD does), subtracted, squared in int32, then rescaled once. */
typedef struct {
    int32_t input1_offset; /* minus the input zero points */
    int32_t input2_offset;
    int32_t output_offset; /* the output zero point */
    int32_t left_shift;    /* 7: (255 * 2^7)^2 still fits in int32 */
    tp_requant input1;     /* multipliers <= 1/2, shift <= 0 */
    tp_requant input2;
    tp_requant output;
} tp_squared_difference_params;

void tp_squared_difference_s8(const tp_squared_difference_params *params, const tp_broadcast *shape,
                              const int8_t *input1, const int8_t *input2, int8_t *output);

/* PRELU: inputs at or above their zero point are rescaled by input/output scale;
 * those below are multiplied by their (offset) alpha first and rescaled by
 * input * alpha / output scale. Alpha is the second, broadcast operand. */
typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t alpha_offset;  /* minus the alpha zero point */
    int32_t output_offset; /* the output zero point */
    tp_requant positive;
    tp_requant negative;
} tp_prelu_params;

void tp_prelu_s8(const tp_prelu_params *params, const tp_broadcast *shape, const int8_t *input,
                 const int8_t *alpha, int8_t *output);

#endif /* TP_ELEMENTWISE_H */
