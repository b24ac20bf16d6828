/* Cortex-M start-up shared by every Arm board: vector table, reset handler
 * (copy .data, clear .bss, enable the FPU), and a HardFault handler that
 * reports the faulting state in a FAULT frame over the UART, then stops.
 *
 * Memory layout symbols come from the board's linker script (sections.ld).
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cortex_m.h"
#include "protocol.h"

extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[];

int main(void);

void Reset_Handler(void);
void HardFault_Handler(void);
void tp_fault_report(const uint32_t *frame);

/* Exceptions a board may implement; otherwise they report as a fault. */
void NMI_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("HardFault_Handler")));

typedef void (*tp_vector)(void);

/* Core exceptions only: the app enables no peripheral interrupt. MemManage,
 * BusFault, UsageFault and SecureFault are not enabled, so they escalate to
 * HardFault; their slots point there anyway. */
__attribute__((section(".vectors"), used)) const tp_vector tp_vector_table[16] = {
    (tp_vector)(uintptr_t)__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    HardFault_Handler, /* MemManage */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    HardFault_Handler, /* SecureFault (Armv8-M) */
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

void Reset_Handler(void)
{
    const uint32_t data_words = (uint32_t)(__data_end__ - __data_start__);
    for (uint32_t i = 0; i < data_words; ++i) {
        __data_start__[i] = __data_load__[i];
    }
    for (uint32_t *p = __bss_start__; p < __bss_end__; ++p) {
        *p = 0;
    }
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access */
    tp_dsb();
    tp_isb();
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)tp_vector_table;
    tp_dsb();
    (void)main();
    for (;;) {
    }
}

/* Finds the stacked exception frame (MSP or PSP by EXC_RETURN bit 2) and passes it on. */
#if defined(__ARM_ARCH_6M__)
/* Armv6-M: no IT blocks, no TST with an immediate, and a B reaches only 2 KB (BL: 16 MB). */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "movs r0, #4\n"
        "mov r1, lr\n"
        "tst r0, r1\n"
        "bne 1f\n"
        "mrs r0, msp\n"
        "bl tp_fault_report\n"
        "1:\n"
        "mrs r0, psp\n"
        "bl tp_fault_report\n");
}
#else
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b tp_fault_report\n");
}
#endif

/* frame: r0 r1 r2 r3 r12 lr pc xpsr, as stacked by the exception entry. */
__attribute__((used)) void tp_fault_report(const uint32_t *frame)
{
#if defined(__ARM_ARCH_6M__)
    /* Armv6-M has no fault status or address registers: every fault is a bare HardFault. */
    const uint32_t regs[7] = {frame[6], frame[5], frame[7], 0u, 0u, 0u, 0u};
#else
    const uint32_t regs[7] = {frame[6], frame[5], frame[7], SCB_CFSR, SCB_HFSR, SCB_MMFAR, SCB_BFAR};
#endif
    protocol_send_fault(regs);
    for (;;) {
        /* stopped: the host sees the FAULT frame and restarts the device */
    }
}
