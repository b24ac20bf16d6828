/* stm32f746-disco: what the shared STM32 code (board_stm32.c) needs of this port. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#include "cortex_m.h"

#define BOARD_NAME "stm32f746-disco"
#define SYSCLK_HZ 216000000u
#define STM32_DWT_LOCKED 1 /* the Cortex-M7 DWT takes writes only once unlocked (LAR) */

/* The console UART (registers of this part's USART generation) */
#define USART1_BASE 0x40011000u
#define USART1_CR1 TP_REG32(USART1_BASE + 0x00u)
#define USART1_CR2 TP_REG32(USART1_BASE + 0x04u)
#define USART1_CR3 TP_REG32(USART1_BASE + 0x08u)
#define USART1_BRR TP_REG32(USART1_BASE + 0x0Cu)
#define USART1_ISR TP_REG32(USART1_BASE + 0x1Cu)
#define USART1_ICR TP_REG32(USART1_BASE + 0x20u)
#define USART1_RDR TP_REG32(USART1_BASE + 0x24u)
#define USART1_TDR TP_REG32(USART1_BASE + 0x28u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR3_OVRDIS (1u << 12)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_ALL 0x00121B5Fu /* PE FE NF ORE IDLE TC LBD CTS RTO EOB CM */
#define STM32_UART_RX_READY() ((USART1_ISR & USART_ISR_RXNE) != 0u)
#define STM32_UART_TX_READY() ((USART1_ISR & USART_ISR_TXE) != 0u)
#define STM32_UART_TX_DONE() ((USART1_ISR & USART_ISR_TC) != 0u)
#define STM32_UART_RX_DATA USART1_RDR
#define STM32_UART_TX_DATA USART1_TDR

#endif /* TP_BOARD_CONFIG_H */
