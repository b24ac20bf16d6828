/* Int8 CONV_2D and FULLY_CONNECTED for cores with the M-profile Vector Extension (Helium:
 * Cortex-M55, M85): kernels/helium/.
 *
 * They compute exactly what the reference kernels of tp_conv.h and tp_fully_connected.h compute.
 * Both are one matrix product, output[column][row] = requant(dot(column, filter row)): a column
 * is an output pixel's k = kh * kw * in_c inputs (or an FC batch row), a row an output
 * channel's filter. VMLADAVA.S8 does 16 int8 MACs into a scalar accumulator; four rows and two
 * columns per pass share each loaded vector (tp_helium_gemm_s8_groups.S). As in the DSP kernels
 * (tp_dsp.h), the generator folds the input offset into an effective bias, bias[o] +
 * input_offset * sum(filter[o]), so the products take the int8 inputs as they are, and taps in
 * the padding are filled with the input zero point (x + input_offset = 0).
 *
 * Requantization is tp_requantize, four channels per vector, exactly:
 *   h = VQRDMULH(x << left, multiplier): the wrapping shift (VSHL) and gemmlowp's saturating
 *       rounding doubling high multiply, which VQRDMULH computes exactly (see
 *       tp_dsp_requantize in tp_dsp.h: both are floor((a * b + 2^30) / 2^31), saturating only
 *       at a = b = INT32_MIN);
 *   the rounding divide by 2^n (n = right shift): VRSHL by -n is (h + 2^(n-1)) >> n computed
 *       without overflow, rounding ties up; the reference rounds ties away from zero, which
 *       for h < 0 is the same shift of h - 1 (it rounds up only when the remainder exceeds
 *       2^(n-1)). The -1 is the sign bit of h AND -n (set only where n >= 1); h - 1 cannot wrap,
 *       as a multiplier below 2^31 keeps h > INT32_MIN.
 * Where every channel of a layer shifts right (n >= 1, left 0), the kernels skip the VSHL and
 * the AND. tests/test_helium_conv_fc.py checks both sequences, modelled lane by lane, against
 * MultiplyByQuantizedMultiplier over every shift, and the kernels against TFLM on the emulated
 * Cortex-M55 with layers mixing left, no and right shifts.
 */
#ifndef TP_HELIUM_H
#define TP_HELIUM_H

#include <arm_mve.h>

#include "tp_conv.h"
#include "tp_conv_inplace.h"
#include "tp_fully_connected.h"
#include "tp_types.h"

/* The kernels' output words: TP_HELIUM_WORDS_HEADER int32, the first nonzero when every row
 * shifts right (n >= 1, no left shift: the short requantization, no VSHL nor AND), then per group
 * of four rows (the row count padded with zero rows to a multiple of four) TP_HELIUM_GROUP_WORDS
 * int32, four lanes each: -n (minus the right shift), effective bias, left shift (the shift's
 * positive part), multiplier. */
#define TP_HELIUM_WORDS_HEADER 4
#define TP_HELIUM_GROUP_WORDS 16

/* What turns the accumulators into int8 outputs. */
typedef struct {
    const int32_t *words; /* TP_HELIUM_GROUP_WORDS per group of four rows (past the header) */
    int32_t output_offset;
    tp_activation activation;
    int32_t right_only; /* every row shifts right */
} tp_helium_output_stage;

/* The filter as the matrix kernel reads it (the generator packs it): per group of four rows,
 * per chunk of 16 of the k inputs, the four rows' 16 weights one after another, k padded with
 * zeros to whole chunks: 64 * ceil(k / 16) bytes a group. */

/* out0[r] = requant(dot(col0, row r)) and out1[r] the same of col1, for rows [0, rows), over k
 * inputs at each column (col1 NULL: one column). Reads no column byte past k. */
void tp_helium_gemm_s8(const int8_t *col0, const int8_t *col1, int32_t k, const int8_t *packed_filter,
                       int32_t rows, const tp_helium_output_stage *stage, int8_t *out0, int8_t *out1);

/* The same for `count` columns k bytes apart, their outputs rows bytes apart from out. */
void tp_helium_gemm_s8_columns(const int8_t *cols, int32_t count, int32_t k, const int8_t *packed_filter,
                               int32_t rows, const tp_helium_output_stage *stage, int8_t *out);

/* CONV_2D without groups. words: the output words above. scratch: two columns of round16(k)
 * bytes (k = kh * kw * in_c) that the kernel gathers, or none (NULL) for a 1x1 filter, whose
 * columns are the input pixels as they are. */
void tp_conv2d_s8_helium(const tp_conv_params *params, const tp_dims *input_dims, const int8_t *input,
                         const tp_dims *filter_dims, const int8_t *packed_filter, const int32_t *words,
                         const tp_dims *output_dims, int8_t *output, int8_t *scratch);

/* The same over its own input (buffer: the input on entry, the output on return), batch 1: output
 * rows computed one at a time into the ring under the reference row schedule (tp_conv_inplace.h),
 * scratch as above. */
void tp_conv2d_s8_helium_inplace(const tp_conv_params *params, const tp_dims *input_dims, const tp_dims *filter_dims,
                                 const int8_t *packed_filter, const int32_t *words, const tp_dims *output_dims,
                                 const tp_inplace_rows *rows, int8_t *buffer, int8_t *ring, int8_t *scratch);

/* A 1x1 stride-1 convolution over its own input, `block` pixels at a time: scratch holds one
 * block of output pixels, block * output_dims->c bytes. */
void tp_conv2d_s8_helium_pointwise_inplace(const tp_conv_params *params, const tp_dims *input_dims,
                                           const tp_dims *filter_dims, const int8_t *packed_filter,
                                           const int32_t *words, const tp_dims *output_dims, int32_t block,
                                           int8_t *buffer, int8_t *scratch);

/* FULLY_CONNECTED with symmetric weights: words from the effective biases and each row's
 * requantization (a per-tensor one repeated), the filter packed as above. */
void tp_fully_connected_s8_helium(const tp_fc_params *params, int32_t batches, int32_t accum_depth,
                                  int32_t output_depth, const int8_t *input, const int8_t *packed_filter,
                                  const int32_t *words, int8_t *output);

/* n bytes from src to dst, 16 a time in a tail-predicated loop (the last chunk's other lanes
 * neither read nor written). */
__attribute__((always_inline)) static inline void tp_helium_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    __asm__ volatile("wlstp.8 lr, %[n], 2f\n"
                     "1:\n\t"
                     "vldrb.8 q0, [%[src]], #16\n\t"
                     "vstrb.8 q0, [%[dst]], #16\n\t"
                     "letp lr, 1b\n"
                     "2:"
                     : [dst] "+r"(dst), [src] "+r"(src)
                     : [n] "r"(n)
                     : "q0", "lr", "memory");
}

/* n bytes of value at dst, the same way. */
__attribute__((always_inline)) static inline void tp_helium_fill(int8_t *dst, int8_t value, int32_t n)
{
    const int8x16_t v = vdupq_n_s8(value);
    __asm__ volatile("wlstp.8 lr, %[n], 2f\n"
                     "1:\n\t"
                     "vstrb.8 %q[v], [%[dst]], #16\n\t"
                     "letp lr, 1b\n"
                     "2:"
                     : [dst] "+r"(dst)
                     : [n] "r"(n), [v] "w"(v)
                     : "lr", "memory");
}

#endif /* TP_HELIUM_H */
