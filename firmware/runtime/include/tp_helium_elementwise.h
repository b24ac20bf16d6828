/* ADD, SUB, AVERAGE_POOL_2D and MAX_POOL_2D for cores with the M-profile Vector Extension
 * (Cortex-M55, M85): kernels/helium/. Bit-exact with the reference kernels of
 * tp_elementwise.h and tp_pooling.h.
 */
#ifndef TP_HELIUM_ELEMENTWISE_H
#define TP_HELIUM_ELEMENTWISE_H

#include "tp_elementwise.h"
#include "tp_pooling.h"
#include "tp_types.h"

/* ADD (or SUB) of two inputs of the output's shape (no broadcast), count elements, four per
 * vector. The reference brings each operand to a common scale (offset, shift left, rescale),
 * which depends on its int8 value alone: scaled holds the generator's two tables of 256 int32,
 * indexed by the value's byte (value & 0xFF; SUB negates input 2's), read by VLDRW gathers.
 * The sum is requantized as tp_requantize_smaller_than_one (params->output), offset and
 * clamped. Element i of both inputs is read before output i is written: it may run in place. */
void tp_add_s8_helium(const tp_add_params *params, const int32_t *scaled, int32_t count, const int8_t *input1,
                      const int8_t *input2, int8_t *output);

/* tp_avg_pool_s8 for windows of at most TP_HELIUM_AVG_POOL_MAX_COUNT elements: eight channels
 * summed in int16 lanes (no overflow: |sum| <= 128 * 256), the rounded division as a doubling
 * high multiply by a per-window reciprocal (see the kernel). */
#define TP_HELIUM_AVG_POOL_MAX_COUNT 256
void tp_avg_pool_s8_helium(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                           const tp_dims *output_dims, int8_t *output);

/* tp_max_pool_s8: sixteen channels per VMAX. */
void tp_max_pool_s8_helium(const tp_pool_params *params, const tp_dims *input_dims, const int8_t *input,
                           const tp_dims *output_dims, int8_t *output);

#endif /* TP_HELIUM_ELEMENTWISE_H */
