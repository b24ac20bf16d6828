/* What the STM32 ports share: DWT timing and the polled console UART, around each part's own
 * clock and UART bring-up (its board C file: stm32_board.h) and registers (its board_config.h:
 * BOARD_NAME, SYSCLK_HZ and the STM32_UART_* accessors).
 *
 * Ticks: DWT CYCCNT, core clock cycles (under Renode: instructions, see the README); on Armv6-M,
 * which has no cycle counter, the port's STM32_TICK_COUNTER timer.
 */
#include <stdint.h>

#include "board.h"
#include "board_config.h"
#include "cortex_m.h"
#include "stm32_board.h"

#if defined(__ARM_ARCH_6M__)
#define TICKS STM32_TICK_COUNTER
#else
#define TICKS DWT_CYCCNT
#endif

void board_init(void)
{
    stm32_clock_init();
    stm32_uart_init();
#if defined(__ARM_ARCH_6M__)
    stm32_ticks_init();
#else
    DEMCR |= DEMCR_TRCENA;
#if defined(STM32_DWT_LOCKED)
    DWT_LAR = DWT_LAR_KEY;
#endif
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
#endif
}

uint32_t board_ticks(void)
{
    return TICKS;
}

int board_uart_getc(uint32_t timeout_ms)
{
    const uint32_t start = TICKS;
    const uint32_t limit = timeout_ms * (SYSCLK_HZ / 1000u);
    while (!STM32_UART_RX_READY()) {
        if (timeout_ms != 0u && TICKS - start >= limit) {
            return -1;
        }
    }
    return (int)(STM32_UART_RX_DATA & 0xFFu);
}

void board_uart_putc(uint8_t byte)
{
    while (!STM32_UART_TX_READY()) {
    }
    STM32_UART_TX_DATA = byte;
}

void board_uart_flush(void)
{
    while (!STM32_UART_TX_DONE()) {
    }
}

uint32_t board_clock_hz(void)
{
    return SYSCLK_HZ;
}

uint8_t board_tick_unit(void)
{
    return (uint8_t)TP_TICK_CYCLES;
}

const char *board_name(void)
{
    return BOARD_NAME;
}

uintptr_t board_fault_address(void)
{
    return 0xF0000000u; /* unmapped on every STM32: a precise BusFault (Renode reads 0 there) */
}
