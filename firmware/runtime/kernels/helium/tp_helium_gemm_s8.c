/* The int8 matrix kernel under the Helium CONV_2D and FULLY_CONNECTED: whole groups of four
 * rows in assembly (tp_helium_gemm_s8_groups.S), a last partial group through a small buffer. */
#include "tp_helium.h"

typedef void tp_helium_groups_4x2_fn(const int8_t *col0, const int8_t *col1, int32_t k, const int8_t *packed_filter,
                                     int32_t groups, const tp_helium_output_stage *stage, int8_t *out0,
                                     int8_t *out1, int32_t pairs, int32_t col_step, int32_t out_step);
typedef void tp_helium_groups_4x1_fn(const int8_t *col, int32_t k, const int8_t *packed_filter, int32_t groups,
                                     const tp_helium_output_stage *stage, int8_t *out);
tp_helium_groups_4x2_fn tp_helium_groups_4x2, tp_helium_groups_4x2_right;
tp_helium_groups_4x1_fn tp_helium_groups_4x1, tp_helium_groups_4x1_right;

static void tp_helium_groups(const int8_t *col0, const int8_t *col1, int32_t k, const int8_t *packed_filter,
                             int32_t groups, const tp_helium_output_stage *stage, int8_t *out0, int8_t *out1)
{
    if (col1 != NULL) {
        (stage->right_only ? tp_helium_groups_4x2_right : tp_helium_groups_4x2)(col0, col1, k, packed_filter, groups,
                                                                                stage, out0, out1, 1, 0, 0);
    } else {
        (stage->right_only ? tp_helium_groups_4x1_right : tp_helium_groups_4x1)(col0, k, packed_filter, groups,
                                                                                stage, out0);
    }
}

void tp_helium_gemm_s8(const int8_t *col0, const int8_t *col1, int32_t k, const int8_t *packed_filter,
                       int32_t rows, const tp_helium_output_stage *stage, int8_t *out0, int8_t *out1)
{
    const int32_t whole = rows / 4, rest = rows % 4;
    if (whole > 0) {
        tp_helium_groups(col0, col1, k, packed_filter, whole, stage, out0, out1);
    }
    if (rest > 0) {
        /* The kernel writes whole groups: the last one goes to a buffer, then its rows out. */
        int8_t last[8];
        tp_helium_output_stage tail = *stage;
        tail.words += TP_HELIUM_GROUP_WORDS * whole;
        tp_helium_groups(col0, col1, k, packed_filter + whole * 64 * ((k + 15) / 16), 1, &tail, last, last + 4);
        for (int32_t r = 0; r < rest; ++r) {
            out0[4 * whole + r] = last[r];
            if (col1 != NULL) {
                out1[4 * whole + r] = last[4 + r];
            }
        }
    }
}

void tp_helium_gemm_s8_columns(const int8_t *cols, int32_t count, int32_t k, const int8_t *packed_filter,
                               int32_t rows, const tp_helium_output_stage *stage, int8_t *out)
{
    const int32_t pairs = count / 2;
    if (rows % 4 == 0 && pairs > 0) {
        /* Whole groups: every pair in one call. */
        (stage->right_only ? tp_helium_groups_4x2_right : tp_helium_groups_4x2)(
            cols, cols + k, k, packed_filter, rows / 4, stage, out, out + rows, pairs, 2 * k, 2 * rows);
    } else {
        for (int32_t i = 0; i < pairs; ++i) {
            tp_helium_gemm_s8(cols + 2 * i * k, cols + (2 * i + 1) * k, k, packed_filter, rows, stage,
                              out + 2 * i * rows, out + (2 * i + 1) * rows);
        }
    }
    if (count % 2) {
        tp_helium_gemm_s8(cols + 2 * pairs * k, NULL, k, packed_filter, rows, stage, out + 2 * pairs * rows, NULL);
    }
}
