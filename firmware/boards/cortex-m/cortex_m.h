/* The few Cortex-M core registers the boards use (Armv7-M / Armv8-M Mainline; Armv6-M has
 * only the SCB's ICSR and VTOR and SysTick of these, and no fault status registers). */
#ifndef TP_CORTEX_M_H
#define TP_CORTEX_M_H

#include <stdint.h>

#define TP_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System control block */
#define SCB_ICSR TP_REG32(0xE000ED04u)
#define SCB_VTOR TP_REG32(0xE000ED08u)
#define SCB_CPACR TP_REG32(0xE000ED88u)
#define SCB_CFSR TP_REG32(0xE000ED28u)
#define SCB_HFSR TP_REG32(0xE000ED2Cu)
#define SCB_MMFAR TP_REG32(0xE000ED34u)
#define SCB_BFAR TP_REG32(0xE000ED38u)

/* SysTick: 24-bit down counter */
#define SYST_CSR TP_REG32(0xE000E010u)
#define SYST_RVR TP_REG32(0xE000E014u)
#define SYST_CVR TP_REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1 = processor clock */

/* Debug: DWT cycle counter (absent in QEMU) */
#define DEMCR TP_REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL TP_REG32(0xE0001000u)
#define DWT_CYCCNT TP_REG32(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR TP_REG32(0xE0001FB0u) /* lock access: the Cortex-M7's DWT takes writes once unlocked */
#define DWT_LAR_KEY 0xC5ACCE55u

static inline void tp_dsb(void)
{
    __asm__ volatile("dsb" ::: "memory");
}

static inline void tp_isb(void)
{
    __asm__ volatile("isb" ::: "memory");
}

#endif /* TP_CORTEX_M_H */
