/* The row-group loops of tp_helium_gemm_s8 (tp_helium.h says what they compute), whole groups
 * of four rows, one or two columns:
 *
 * void tp_helium_groups_4x2(const int8_t *col0, const int8_t *col1, int32_t k, const int8_t *packed_filter,
 *                           int32_t groups, const tp_helium_output_stage *stage, int8_t *out0, int8_t *out1,
 *                           int32_t pairs, int32_t col_step, int32_t out_step);
 *   (pairs >= 1 pairs of columns, each col_step bytes after the last, their outputs out_step after)
 * void tp_helium_groups_4x1(const int8_t *col, int32_t k, const int8_t *packed_filter, int32_t groups,
 *                           const tp_helium_output_stage *stage, int8_t *out);
 *
 * and the same with _right, for layers whose every channel shifts right (n >= 1, no left shift):
 * no VSHL, and the rounding divide's -1 is the plain sign bit (no AND with -n).
 *
 * Assembly, as VMLADAVA takes its accumulator only in an even register (r0, r2, ... r12, lr):
 * the two-column loop keeps eight there, so it counts its chunks in r5 (SUBS/BNE) and takes a
 * last partial chunk with predicated column loads; the one-column loop keeps four and runs as
 * a tail-predicated low-overhead loop (DLSTP/LETP), which also predicates the last chunk.
 * The packed filter's zero padding makes the weights of a partial chunk safe to load whole.
 */
#if defined(__arm__) && defined(__ARM_FEATURE_MVE)

    .syntax unified
    .thumb
    .text

/* Byte offsets in a group's output words (TP_HELIUM_GROUP_WORDS, tp_helium.h); -n is at 0. */
#define BIAS 16
#define LEFT 32
#define MULTIPLIER 48

/* The rounding divide of \acc (the high products, int32 lanes) by 2^n, the output offset and
 * the clamp, with q2 = -n and q3 as a temporary. */
.macro FIXUP_ROUND acc, general
.if \general
    vand        q3, \acc, q2
    vshr.s32    q3, q3, #31             @ -1 where the value is negative and n >= 1
.else
    vshr.s32    q3, \acc, #31           @ -1 where the value is negative
.endif
    vadd.i32    \acc, \acc, q3
    vrshl.s32   \acc, \acc, q2
    vadd.i32    \acc, \acc, q4          @ output offset
    vmax.s32    \acc, \acc, q5
    vmin.s32    \acc, \acc, q6
.endm

/* \acc = VQRDMULH(\acc << left, multiplier) with the group's words at r11 (q7 the left shifts,
 * q2 the multipliers: loaded once for both columns, \acc q0 first). */
.macro HIGH_PRODUCT acc, general
.if \general
.ifc \acc, q0
    vldrw.32    q7, [r11, #LEFT]
.endif
    vshl.s32    \acc, \acc, q7
.endif
.ifc \acc, q0
    vldrw.32    q2, [r11, #MULTIPLIER]
.endif
    vqrdmulh.s32 \acc, \acc, q2
.endm

/* q4 output offset, q5 activation min, q6 activation max, from the stage at \stage; \words
 * (a register) its words. */
.macro LOAD_STAGE stage, words, tmp
    ldr         \words, [\stage]
    ldr         \tmp, [\stage, #4]
    vdup.32     q4, \tmp
    ldr         \tmp, [\stage, #8]
    vdup.32     q5, \tmp
    ldr         \tmp, [\stage, #12]
    vdup.32     q6, \tmp
.endm

/* Two columns. Registers in the loop: r0 r2 r4 r6 column 0's accumulators of rows 0..3, r8 r10
 * r12 lr column 1's; r1 col0, r3 col1 (walking), r5 chunks left, r7 k % 16, r9 filter, r11 words.
 * Stack: [sp] col0, [sp, #4] col1, [sp, #8] out0, [sp, #12] out1 (walking), [sp, #16] words end,
 * [sp, #20] k / 16, [sp, #24] the filter, [sp, #28] the words, [sp, #32] [sp, #36] the pair's
 * out0 and out1, [sp, #40] pairs left; the stacked arguments from sp + 144. */
.macro GROUPS_4X2 name, general
    .global \name
    .type   \name, %function
    .thumb_func
\name:
    push        {r4-r11, lr}
    vpush       {d8-d15}
    sub         sp, sp, #44
    strd        r0, r1, [sp]
    mov         r9, r3
    and         r7, r2, #15
    asr         r2, r2, #4
    str         r2, [sp, #20]
    ldrd        r0, r1, [sp, #152]      @ out0, out1
    strd        r0, r1, [sp, #8]
    strd        r0, r1, [sp, #32]
    ldr         r0, [sp, #160]          @ pairs
    str         r0, [sp, #40]
    ldrd        r0, r1, [sp, #144]      @ groups, stage
    LOAD_STAGE  r1, r11, r2
    strd        r9, r11, [sp, #24]
    add         r0, r11, r0, lsl #6
    str         r0, [sp, #16]
1:
    ldrd        r1, r3, [sp]
    ldr         r5, [sp, #20]
    ldrd        r0, r2, [r11, #BIAS]
    ldrd        r4, r6, [r11, #BIAS + 8]
    ldrd        r8, r10, [r11, #BIAS]
    ldrd        r12, lr, [r11, #BIAS + 8]
    cbz         r5, 3f
2:
    vldrb.8     q0, [r1], #16
    vldrb.8     q1, [r3], #16
    vldrb.8     q2, [r9], #16
    vmladava.s8 r0, q0, q2
    vmladava.s8 r8, q1, q2
    vldrb.8     q3, [r9], #16
    vmladava.s8 r2, q0, q3
    vmladava.s8 r10, q1, q3
    vldrb.8     q2, [r9], #16
    vmladava.s8 r4, q0, q2
    vmladava.s8 r12, q1, q2
    vldrb.8     q3, [r9], #16
    vmladava.s8 r6, q0, q3
    vmladava.s8 lr, q1, q3
    subs        r5, r5, #1
    bne         2b
3:
    cbz         r7, 4f
    vctp.8      r7                      @ the last k % 16 inputs; the loads zero the other lanes
    vpstt
    vldrbt.8    q0, [r1]
    vldrbt.8    q1, [r3]
    vldrb.8     q2, [r9], #16
    vmladava.s8 r0, q0, q2
    vmladava.s8 r8, q1, q2
    vldrb.8     q3, [r9], #16
    vmladava.s8 r2, q0, q3
    vmladava.s8 r10, q1, q3
    vldrb.8     q2, [r9], #16
    vmladava.s8 r4, q0, q2
    vmladava.s8 r12, q1, q2
    vldrb.8     q3, [r9], #16
    vmladava.s8 r6, q0, q3
    vmladava.s8 lr, q1, q3
4:
    vmov        q0[2], q0[0], r0, r4
    vmov        q0[3], q0[1], r2, r6
    vmov        q1[2], q1[0], r8, r12
    vmov        q1[3], q1[1], r10, lr
    HIGH_PRODUCT q0, \general
    HIGH_PRODUCT q1, \general
    vldrw.32    q2, [r11], #64          @ -n, and on to the next group
    FIXUP_ROUND q0, \general
    FIXUP_ROUND q1, \general
    ldrd        r0, r2, [sp, #8]
    vstrb.32    q0, [r0], #4
    vstrb.32    q1, [r2], #4
    strd        r0, r2, [sp, #8]
    ldr         r0, [sp, #16]
    cmp         r11, r0
    bne         1b
    ldr         r0, [sp, #40]           @ the next pair, if any
    subs        r0, r0, #1
    beq         5f
    str         r0, [sp, #40]
    ldrd        r1, r3, [sp]
    ldr         r0, [sp, #164]          @ col_step
    add         r1, r1, r0
    add         r3, r3, r0
    strd        r1, r3, [sp]
    ldrd        r0, r2, [sp, #32]
    ldr         r4, [sp, #168]          @ out_step
    add         r0, r0, r4
    add         r2, r2, r4
    strd        r0, r2, [sp, #32]
    strd        r0, r2, [sp, #8]
    ldrd        r9, r11, [sp, #24]
    b           1b
5:
    add         sp, sp, #44
    vpop        {d8-d15}
    pop         {r4-r11, pc}
    .size   \name, . - \name
.endm

    GROUPS_4X2 tp_helium_groups_4x2, 1
    GROUPS_4X2 tp_helium_groups_4x2_right, 0

/* One column. Registers in the loop: r0 r2 r4 r6 the accumulators of rows 0..3, r1 col (walking),
 * r3 k, r5 out, r7 words end, r8 col, r9 filter, r11 words, lr the loop's elements left.
 * The stacked arguments from sp + 100. */
.macro GROUPS_4X1 name, general
    .global \name
    .type   \name, %function
    .thumb_func
\name:
    push        {r4-r11, lr}
    vpush       {d8-d15}
    mov         r8, r0
    mov         r9, r2
    mov         r7, r3                  @ groups
    mov         r3, r1
    ldrd        r0, r5, [sp, #100]      @ stage, out
    LOAD_STAGE  r0, r11, r2
    add         r7, r11, r7, lsl #6
1:
    mov         r1, r8
    ldrd        r0, r2, [r11, #BIAS]
    ldrd        r4, r6, [r11, #BIAS + 8]
    dlstp.8     lr, r3
2:
    vldrb.8     q0, [r1], #16
    vldrb.8     q1, [r9], #16
    vmladava.s8 r0, q0, q1
    vldrb.8     q2, [r9], #16
    vmladava.s8 r2, q0, q2
    vldrb.8     q1, [r9], #16
    vmladava.s8 r4, q0, q1
    vldrb.8     q2, [r9], #16
    vmladava.s8 r6, q0, q2
    letp        lr, 2b
    vmov        q0[2], q0[0], r0, r4
    vmov        q0[3], q0[1], r2, r6
    HIGH_PRODUCT q0, \general
    vldrw.32    q2, [r11], #64
    FIXUP_ROUND q0, \general
    vstrb.32    q0, [r5], #4
    cmp         r11, r7
    bne         1b
    vpop        {d8-d15}
    pop         {r4-r11, pc}
    .size   \name, . - \name
.endm

    GROUPS_4X1 tp_helium_groups_4x1, 1
    GROUPS_4X1 tp_helium_groups_4x1_right, 0

#endif
