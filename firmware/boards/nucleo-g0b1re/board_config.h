/* nucleo-g0b1re: what the shared STM32 code (board_stm32.c) needs of this port. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#include "cortex_m.h"

#define BOARD_NAME "nucleo-g0b1re"
#define SYSCLK_HZ 64000000u

/* The console UART (registers of this part's USART generation: ISR, ICR, RDR, TDR) */
#define USART2_BASE 0x40004400u
#define USART2_CR1 TP_REG32(USART2_BASE + 0x00u)
#define USART2_CR2 TP_REG32(USART2_BASE + 0x04u)
#define USART2_CR3 TP_REG32(USART2_BASE + 0x08u)
#define USART2_BRR TP_REG32(USART2_BASE + 0x0Cu)
#define USART2_ISR TP_REG32(USART2_BASE + 0x1Cu)
#define USART2_ICR TP_REG32(USART2_BASE + 0x20u)
#define USART2_RDR TP_REG32(USART2_BASE + 0x24u)
#define USART2_TDR TP_REG32(USART2_BASE + 0x28u)
#define USART2_PRESC TP_REG32(USART2_BASE + 0x2Cu)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR3_OVRDIS (1u << 12)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_ALL 0x0012035Fu /* PE FE NE ORE IDLE TC LBD CTS CM WU */
#define STM32_UART_RX_READY() ((USART2_ISR & USART_ISR_RXNE) != 0u)
#define STM32_UART_TX_READY() ((USART2_ISR & USART_ISR_TXE) != 0u)
#define STM32_UART_TX_DONE() ((USART2_ISR & USART_ISR_TC) != 0u)
#define STM32_UART_RX_DATA USART2_RDR
#define STM32_UART_TX_DATA USART2_TDR

/* The tick counter: a Cortex-M0+ has no DWT cycle counter, so TIM2 (32 bits) counts HCLK
 * cycles, started by stm32_ticks_init() (board_nucleog0b1.c). */
#define STM32_TICK_COUNTER TP_REG32(0x40000024u) /* TIM2_CNT */

#endif /* TP_BOARD_CONFIG_H */
