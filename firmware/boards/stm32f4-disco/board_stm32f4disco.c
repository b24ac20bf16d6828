/* ST STM32F4DISCOVERY (STM32F407VG, Cortex-M4F): register-level bring-up, no vendor HAL.
 *
 * Clock: HSE 8 MHz crystal -> PLL (M=8, N=336, P=2) = 168 MHz SYSCLK = HCLK,
 *        APB1 = HCLK/4 = 42 MHz, APB2 = HCLK/2 = 84 MHz; voltage scale 1,
 *        5 flash wait states (RM0090 3.5.1, 6.3.2).
 * Link:  USART2 on PA2 (TX) / PA3 (RX), AF7, 115200 8N1 from PCLK1 (a USB-serial
 *        adapter on the real board; Renode's stm32f4_discovery-kit console UART).
 * Ticks: DWT CYCCNT (board_stm32.c).
 */
#include <stdint.h>

#include "board.h"
#include "board_config.h"
#include "cortex_m.h"
#include "stm32_board.h"

#define PCLK1_HZ (SYSCLK_HZ / 4u)
#define BAUD 115200u

/* RCC */
#define RCC_BASE 0x40023800u
#define RCC_CR TP_REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR TP_REG32(RCC_BASE + 0x04u)
#define RCC_CFGR TP_REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR TP_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR TP_REG32(RCC_BASE + 0x40u)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR_FIELDS 0x0F437FFFu /* M, N, P, SRC, Q; the reserved bits keep their reset value */
#define RCC_PLLCFGR_M(m) ((m) << 0)
#define RCC_PLLCFGR_N(n) ((n) << 6)
#define RCC_PLLCFGR_P_DIV2 (0u << 16)
#define RCC_PLLCFGR_SRC_HSE (1u << 22)
#define RCC_PLLCFGR_Q(q) ((q) << 24)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SW_PLL (2u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_PPRE1_MASK (7u << 10)
#define RCC_CFGR_PPRE1_DIV4 (5u << 10)
#define RCC_CFGR_PPRE2_MASK (7u << 13)
#define RCC_CFGR_PPRE2_DIV2 (4u << 13)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)

/* PWR */
#define PWR_CR TP_REG32(0x40007000u)
#define PWR_CR_VOS (1u << 14) /* scale 1: up to 168 MHz */

/* Flash interface */
#define FLASH_ACR TP_REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_LATENCY_5WS 5u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOA */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER TP_REG32(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR TP_REG32(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR TP_REG32(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL TP_REG32(GPIOA_BASE + 0x20u)
#define PIN_TX 2u
#define PIN_RX 3u
#define AF_USART2 7u

void stm32_clock_init(void)
{
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the enable takes effect before PWR is touched */
    PWR_CR |= PWR_CR_VOS;

    RCC_CR |= RCC_CR_HSEON;
    while (!(RCC_CR & RCC_CR_HSERDY)) {
    }

    /* PLL: HSE 8 MHz / 8 = 1 MHz input, x336 = 336 MHz VCO, /2 = 168 MHz (P), /7 = 48 MHz (Q, USB). */
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_FIELDS) | RCC_PLLCFGR_SRC_HSE | RCC_PLLCFGR_M(8u) |
                  RCC_PLLCFGR_N(336u) | RCC_PLLCFGR_P_DIV2 | RCC_PLLCFGR_Q(7u);
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    /* Wait states before raising the clock. */
    FLASH_ACR = FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_ACR_LATENCY_5WS) {
    }

    RCC_CFGR = (RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE1_MASK | RCC_CFGR_PPRE2_MASK)) |
               RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }
}

void stm32_uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;

    GPIOA_MODER = (GPIOA_MODER & ~((3u << (2u * PIN_TX)) | (3u << (2u * PIN_RX)))) |
                  (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX)); /* alternate function */
    GPIOA_OSPEEDR |= (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX));
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << (2u * PIN_RX))) | (1u << (2u * PIN_RX)); /* RX pull-up */
    GPIOA_AFRL = (GPIOA_AFRL & ~((0xFu << (4u * PIN_TX)) | (0xFu << (4u * PIN_RX)))) |
                 (AF_USART2 << (4u * PIN_TX)) | (AF_USART2 << (4u * PIN_RX));

    USART2_CR1 = 0;
    USART2_CR2 = 0; /* 1 stop bit */
    USART2_CR3 = 0;
    /* Oversampling by 16: BRR = PCLK1 / baud (mantissa and 4-bit fraction). 42 MHz, 115200: 365. */
    USART2_BRR = (PCLK1_HZ + BAUD / 2u) / BAUD;
    USART2_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}
