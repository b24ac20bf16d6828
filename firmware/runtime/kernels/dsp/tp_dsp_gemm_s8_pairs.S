/* tp_dsp_pairs, the row-pair loop of tp_dsp_gemm_s8 (tp_dsp_gemm_s8.c says what it computes).
 *
 * It keeps fourteen values in registers: two columns' pointers and end, the filter pointer,
 * four accumulators, the output pointers and the row words. As inline assembly it had to
 * name r7, r9 and lr, which frame-pointer (-fno-omit-frame-pointer: r7) and static-base
 * (-ffixed-r9, -msingle-pic-base) builds reserve; as a function of its own with the AAPCS
 * prologue, it saves every callee-saved register it uses, whatever the caller's flags.
 *
 * const int32_t *tp_dsp_pairs(const int32_t *cols, const int32_t *cols_end, const int32_t *w,
 *                             const int32_t *words, const int32_t *words_end, int8_t *out0,
 *                             int8_t *out1, int32_t acc[4]);
 */
#if defined(__arm__) && defined(__ARM_FEATURE_DSP)

    .syntax unified
    .thumb
    .text

/* Registers in the loop: r0 words, r1 out0, r2 out1, r3 words_end, r4 cols, r5 r6 scratch,
 * r7 a00, r8 a01, r9 a10, r10 a11 (a<column><row>), r11 col, r12 w, lr cols_end. */

/* One group of four inputs: 3 LDRD, 4 SXTB16 and 8 SMLAD do 16 MACs. */
.macro GROUP_2X2
    ldrd    r0, r1, [r11], #16
    ldrd    r2, r3, [r11, #-8]
    ldrd    r4, r5, [r12], #8
    sxtb16  r6, r4
    sxtb16  r4, r4, ror #8
    smlad   r7, r0, r6, r7
    smlad   r9, r2, r6, r9
    smlad   r7, r1, r4, r7
    smlad   r9, r3, r4, r9
    sxtb16  r6, r5
    sxtb16  r5, r5, ror #8
    smlad   r8, r0, r6, r8
    smlad   r10, r2, r6, r10
    smlad   r8, r1, r5, r8
    smlad   r10, r3, r5, r10
.endm

/* The short form of accumulator acc with the row's words in r5 (left + 1), r6 (multiplier),
 * r3 (rounding), r4 (right), saturated to int8 and stored at out, which moves on by one. */
.macro OUTPUT acc, out
    add     r11, r3, \acc, asr #31
    lsl     \acc, \acc, r5
    smmlar  \acc, \acc, r6, r11
    asr     \acc, \acc, r4
    ssat    \acc, #8, \acc
    strb    \acc, [\out], #1
.endm

    .global tp_dsp_pairs
    .type   tp_dsp_pairs, %function
    .thumb_func
tp_dsp_pairs:
    push    {r4-r11, lr}            @ 36 bytes: the stacked arguments start at sp + 36
    mov     r4, r0                  @ cols
    mov     lr, r1                  @ cols_end
    mov     r12, r2                 @ w
    mov     r0, r3                  @ words
    ldr     r3, [sp, #36]           @ words_end
    ldr     r1, [sp, #40]           @ out0
    ldr     r2, [sp, #44]           @ out1
    cmp     r0, r3
    beq     9f
1:
    ldrd    r7, r8, [r0]            @ each accumulator starts at its row's effective bias
    mov     r9, r7
    mov     r10, r8
    mov     r11, r4
    push    {r0-r4}                 @ the group loop needs every register
    sub     r6, lr, r11
    tst     r6, #16
    bne     3f                      @ an odd number of groups enters at the second
2:
    GROUP_2X2
3:
    GROUP_2X2
    cmp     r11, lr
    bne     2b
    pop     {r0-r2}
    ldrd    r5, r6, [r0, #8]
    cmp     r5, #0
    beq     8f                      @ this pair's outputs take the C path
    ldrd    r3, r4, [r0, #16]
    OUTPUT  r7, r1
    OUTPUT  r9, r2
    ldrd    r5, r6, [r0, #24]
    ldrd    r3, r4, [r0, #32]
    OUTPUT  r8, r1
    OUTPUT  r10, r2
    adds    r0, #40
    pop     {r3, r4}
    cmp     r0, r3
    bne     1b
    b       9f
8:
    pop     {r3, r4}
9:
    ldr     r5, [sp, #48]           @ acc
    stm     r5, {r7-r10}            @ a00, a01, a10, a11
    pop     {r4-r11, pc}            @ returns the words reached, in r0
    .size   tp_dsp_pairs, . - tp_dsp_pairs

#endif

/* No executable stack for this object. */
#if defined(__ELF__)
    .section .note.GNU-stack, "", %progbits
#endif
