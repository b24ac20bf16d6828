/* Board abstraction: everything the protocol server needs from a board.
 *
 * A board provides start-up (vector table, memory set-up, FPU enable), one
 * byte-stream transport to the host (a UART, or stdin/stdout for the host
 * board), a free-running tick counter and a fault handler that reports
 * through protocol_send_fault(). Nothing else of the board is used.
 */
#ifndef TP_BOARD_H
#define TP_BOARD_H

#include <stdint.h>

/* What one tick of board_ticks() is (the INFO tick_unit field). */
#define TP_TICK_INSTRUCTIONS 0u /* QEMU with -icount shift=0: one tick per guest instruction */
#define TP_TICK_CYCLES 1u       /* real hardware: DWT cycle counter */
#define TP_TICK_NANOSECONDS 2u  /* host build: monotonic clock */

void board_init(void);

/* The next received byte, or -1 if none arrived within timeout_ms (0 = wait forever). */
int board_uart_getc(uint32_t timeout_ms);
void board_uart_putc(uint8_t byte);
/* Returns once every byte written so far has left. */
void board_uart_flush(void);

/* Free-running tick counter (wraps at 2^32); unit given by board_tick_unit(). */
uint32_t board_ticks(void);
/* Core clock of the board in Hz (nominal; 0 if unknown). */
uint32_t board_clock_hz(void);
uint8_t board_tick_unit(void);
const char *board_name(void);

/* An address whose access faults on this board; used by FAULT_TEST builds only. */
uintptr_t board_fault_address(void);

#endif /* TP_BOARD_H */
