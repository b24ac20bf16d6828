/* tp_scalar_dot4 for Armv6-M (tp_scalar_dot4.c has the portable C and says what it computes).
 *
 * The loop keeps eight values in the eight low registers: the two pointers, the shared value,
 * a product and the four accumulators; the ends sit in ip and lr (a compare reads high
 * registers). Written as a function of its own rather than inline assembly so that builds
 * reserving r7 (-fno-omit-frame-pointer) still compile: it saves what it uses. Per shared
 * value: LDRB and SXTB, then per accumulator LDRB, MULS, ADDS (Armv6-M has no multiply-
 * accumulate and no immediate-offset signed byte load).
 *
 * void tp_scalar_dot4(const int8_t *s, const uint8_t *q, int32_t k, uint32_t acc[4]);
 */
#if defined(__arm__) && defined(__ARM_ARCH_6M__)

    .syntax unified
    .thumb
    .text

/* One shared value s[i] (i = \i from r0) times q[4i .. 4i + 3] (from r1) into r4-r7. */
.macro ONE_VALUE i
    ldrb    r2, [r0, #\i]
    sxtb    r2, r2
    ldrb    r3, [r1, #(4 * \i)]
    muls    r3, r2, r3
    adds    r4, r4, r3
    ldrb    r3, [r1, #(4 * \i + 1)]
    muls    r3, r2, r3
    adds    r5, r5, r3
    ldrb    r3, [r1, #(4 * \i + 2)]
    muls    r3, r2, r3
    adds    r6, r6, r3
    ldrb    r3, [r1, #(4 * \i + 3)]
    muls    r2, r3, r2
    adds    r7, r7, r2
.endm

    .global tp_scalar_dot4
    .type   tp_scalar_dot4, %function
    .p2align 2
    .thumb_func
tp_scalar_dot4:
    push    {r4, r5, r6, r7, lr}
    mov     r4, r8
    push    {r4}
    mov     r8, r3
    adds    r4, r0, r2
    mov     lr, r4              /* s + k */
    lsrs    r2, r2, #2
    lsls    r2, r2, #2
    adds    r2, r0, r2
    mov     ip, r2              /* s + k rounded down to whole groups of four */
    ldm     r3!, {r4, r5, r6, r7}
    cmp     r0, ip
    beq     2f
1:
    ONE_VALUE 0
    ONE_VALUE 1
    ONE_VALUE 2
    ONE_VALUE 3
    adds    r0, r0, #4
    adds    r1, r1, #16
    cmp     r0, ip
    bne     1b
2:
    cmp     r0, lr
    beq     4f
3:
    ONE_VALUE 0
    adds    r0, r0, #1
    adds    r1, r1, #4
    cmp     r0, lr
    bne     3b
4:
    mov     r3, r8
    stm     r3!, {r4, r5, r6, r7}
    pop     {r4}
    mov     r8, r4
    pop     {r4, r5, r6, r7, pc}
    .size   tp_scalar_dot4, . - tp_scalar_dot4

#endif
