/* stm32f4-disco: what the shared STM32 code (board_stm32.c) needs of this port. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#include "cortex_m.h"

#define BOARD_NAME "stm32f4-disco"
#define SYSCLK_HZ 168000000u

/* The console UART (registers of this part's USART generation) */
#define USART2_BASE 0x40004400u
#define USART2_SR TP_REG32(USART2_BASE + 0x00u)
#define USART2_DR TP_REG32(USART2_BASE + 0x04u)
#define USART2_BRR TP_REG32(USART2_BASE + 0x08u)
#define USART2_CR1 TP_REG32(USART2_BASE + 0x0Cu)
#define USART2_CR2 TP_REG32(USART2_BASE + 0x10u)
#define USART2_CR3 TP_REG32(USART2_BASE + 0x14u)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define STM32_UART_RX_READY() ((USART2_SR & USART_SR_RXNE) != 0u)
#define STM32_UART_TX_READY() ((USART2_SR & USART_SR_TXE) != 0u)
#define STM32_UART_TX_DONE() ((USART2_SR & USART_SR_TC) != 0u)
#define STM32_UART_RX_DATA USART2_DR
#define STM32_UART_TX_DATA USART2_DR

#endif /* TP_BOARD_CONFIG_H */
