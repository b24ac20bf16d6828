/* Arm MPS2/MPS3 FPGA images (AN385, AN386, AN500, AN505, AN547) as emulated by QEMU:
 * UART0 (CMSDK APB UART, polled) to the host, SysTick as the tick source.
 *
 * Timing: QEMU models no DWT cycle counter. Run with `-icount shift=0` the
 * virtual clock advances exactly 1 ns per guest instruction, so SysTick,
 * clocked from the system clock (BOARD_SYSCLK_HZ), advances once every
 * 1e9 / BOARD_SYSCLK_HZ instructions. board_ticks() therefore counts guest
 * instructions (in steps of that many), not cycles of a real core. Where that
 * step is not a whole number (AN547: 32 MHz, 31.25 instructions per SysTick)
 * the count is scaled in 24.8 fixed point and rounded down.
 *
 * Per-image facts (UART base, clock, fault address) are in board_config.h.
 */
#include <stdint.h>

#include "board.h"
#include "board_config.h"
#include "cmsdk_uart.h"
#include "cortex_m.h"

#ifndef BOARD_UART_PCLK_HZ
#define BOARD_UART_PCLK_HZ BOARD_SYSCLK_HZ /* the UART is clocked like SysTick */
#endif

#define INSNS_PER_SYSTICK (1000000000u / BOARD_SYSCLK_HZ)
/* Instructions per SysTick in 1/256ths, for clocks that do not divide 1 GHz. */
#define INSNS_PER_SYSTICK_Q8 ((1000000000ull << 8) / BOARD_SYSCLK_HZ)
#if (1000000000ull << 8) % BOARD_SYSCLK_HZ != 0
#error "BOARD_SYSCLK_HZ: 1e9 / BOARD_SYSCLK_HZ is not a multiple of 1/256"
#endif
#define TICKS_PER_MS 1000000u /* instructions per virtual millisecond at -icount shift=0 */
#define SYSTICK_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    ++systick_wraps;
}

void board_init(void)
{
    cmsdk_uart_init(BOARD_UART_BASE, BOARD_UART_PCLK_HZ, 115200u);
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
}

uint32_t board_ticks(void)
{
    uint32_t wraps;
    uint32_t value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    const uint32_t systicks = (wraps << 24) + (SYSTICK_RELOAD - value);
#if 1000000000u % BOARD_SYSCLK_HZ == 0
    return systicks * INSNS_PER_SYSTICK;
#else
    return (uint32_t)(((uint64_t)systicks * INSNS_PER_SYSTICK_Q8) >> 8);
#endif
}

int board_uart_getc(uint32_t timeout_ms)
{
    const uint32_t start = board_ticks();
    const uint32_t limit = timeout_ms * TICKS_PER_MS;
    while (!cmsdk_uart_rx_ready(BOARD_UART_BASE)) {
        if (timeout_ms != 0u && board_ticks() - start >= limit) {
            return -1;
        }
    }
    return cmsdk_uart_read(BOARD_UART_BASE);
}

void board_uart_putc(uint8_t byte)
{
    cmsdk_uart_write(BOARD_UART_BASE, byte);
}

void board_uart_flush(void)
{
    cmsdk_uart_flush(BOARD_UART_BASE);
}

uint32_t board_clock_hz(void)
{
    return BOARD_SYSCLK_HZ;
}

uint8_t board_tick_unit(void)
{
    return (uint8_t)TP_TICK_INSTRUCTIONS;
}

const char *board_name(void)
{
    return BOARD_NAME;
}

uintptr_t board_fault_address(void)
{
    return BOARD_FAULT_ADDRESS;
}
