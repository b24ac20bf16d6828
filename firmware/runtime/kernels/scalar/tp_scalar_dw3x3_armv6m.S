/* tp_scalar_dw3x3_s1 and tp_scalar_dw3x3_s2 for Armv6-M (tp_scalar_dw3x3.c has the portable C
 * and says what they compute): a 3x3 window of four output pixels straight from the plane, each
 * tap loaded once for the four, every offset an immediate. Registers: r0 the window's row, r1 the
 * taps, r2 the tap, r3 a product, r4-r7 the accumulators, lr the row step, ip the accumulators'
 * address. A function of its own, as tp_scalar_dot4_armv6m.S says why.
 *
 * void tp_scalar_dw3x3_s1(const uint8_t *q, const int8_t *w, int32_t row_step, uint32_t acc[4]);
 */
#if defined(__arm__) && defined(__ARM_ARCH_6M__)

    .syntax unified
    .thumb
    .text

/* Tap \i of the filter, at column \kx of the window's row, for pixels \s apart. */
.macro TAP i, kx, s
    ldrb    r2, [r1, #\i]
    sxtb    r2, r2
    ldrb    r3, [r0, #\kx]
    muls    r3, r2, r3
    adds    r4, r4, r3
    ldrb    r3, [r0, #(\kx + \s)]
    muls    r3, r2, r3
    adds    r5, r5, r3
    ldrb    r3, [r0, #(\kx + 2 * \s)]
    muls    r3, r2, r3
    adds    r6, r6, r3
    ldrb    r3, [r0, #(\kx + 3 * \s)]
    muls    r2, r3, r2
    adds    r7, r7, r2
.endm

.macro WINDOW name, s
    .global \name
    .type   \name, %function
    .p2align 2
    .thumb_func
\name:
    push    {r4, r5, r6, r7, lr}
    mov     lr, r2
    mov     ip, r3
    ldm     r3!, {r4, r5, r6, r7}
    TAP     0, 0, \s
    TAP     1, 1, \s
    TAP     2, 2, \s
    add     r0, lr
    TAP     3, 0, \s
    TAP     4, 1, \s
    TAP     5, 2, \s
    add     r0, lr
    TAP     6, 0, \s
    TAP     7, 1, \s
    TAP     8, 2, \s
    mov     r3, ip
    stm     r3!, {r4, r5, r6, r7}
    pop     {r4, r5, r6, r7, pc}
    .size   \name, . - \name
.endm

    WINDOW  tp_scalar_dw3x3_s1, 1
    WINDOW  tp_scalar_dw3x3_s2, 2

#endif
