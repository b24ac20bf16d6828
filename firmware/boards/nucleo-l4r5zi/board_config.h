/* nucleo-l4r5zi: what the shared STM32 code (board_stm32.c) needs of this port. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#include "cortex_m.h"

#define BOARD_NAME "nucleo-l4r5zi"
#define SYSCLK_HZ 120000000u

/* The console UART (registers of this part's USART generation) */
#define LPUART1_BASE 0x40008000u
#define LPUART1_CR1 TP_REG32(LPUART1_BASE + 0x00u)
#define LPUART1_CR3 TP_REG32(LPUART1_BASE + 0x08u)
#define LPUART1_BRR TP_REG32(LPUART1_BASE + 0x0Cu)
#define LPUART1_ISR TP_REG32(LPUART1_BASE + 0x1Cu)
#define LPUART1_ICR TP_REG32(LPUART1_BASE + 0x20u)
#define LPUART1_RDR TP_REG32(LPUART1_BASE + 0x24u)
#define LPUART1_TDR TP_REG32(LPUART1_BASE + 0x28u)
#define LPUART_CR1_UE (1u << 0)
#define LPUART_CR1_RE (1u << 2)
#define LPUART_CR1_TE (1u << 3)
#define LPUART_CR3_OVRDIS (1u << 12)
#define LPUART_ISR_ORE (1u << 3)
#define LPUART_ISR_RXNE (1u << 5)
#define LPUART_ISR_TC (1u << 6)
#define LPUART_ISR_TXE (1u << 7)
#define LPUART_ICR_ALL 0x0012025Fu /* PE FE NE ORE IDLE TC CTS CM WU */
#define STM32_UART_RX_READY() ((LPUART1_ISR & LPUART_ISR_RXNE) != 0u)
#define STM32_UART_TX_READY() ((LPUART1_ISR & LPUART_ISR_TXE) != 0u)
#define STM32_UART_TX_DONE() ((LPUART1_ISR & LPUART_ISR_TC) != 0u)
#define STM32_UART_RX_DATA LPUART1_RDR
#define STM32_UART_TX_DATA LPUART1_TDR

#endif /* TP_BOARD_CONFIG_H */
