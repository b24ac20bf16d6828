/* The bring-up each STM32 port provides to the code they share (board_stm32.c). */
#ifndef TP_STM32_BOARD_H
#define TP_STM32_BOARD_H

/* SYSCLK to SYSCLK_HZ (board_config.h), flash wait states first. */
void stm32_clock_init(void);

/* The console UART at 115200 8N1 on the pins wired to the ST-LINK virtual COM port. */
void stm32_uart_init(void);

#if defined(__ARM_ARCH_6M__)
/* Armv6-M has no DWT cycle counter: starts the port's counter of core clock cycles
 * (STM32_TICK_COUNTER, board_config.h), free-running over 32 bits. */
void stm32_ticks_init(void);
#endif

#endif /* TP_STM32_BOARD_H */
