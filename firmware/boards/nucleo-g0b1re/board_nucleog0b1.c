/* ST NUCLEO-G0B1RE (STM32G0B1RE, Cortex-M0+): register-level bring-up, no vendor HAL.
 *
 * Clock: HSI16 -> PLL (M=1, N=8, R=2) = 64 MHz SYSCLK = HCLK = PCLK, voltage Range 1
 *        (the reset value) with 2 flash wait states (RM0444 5.2, 3.3.4).
 * Link:  USART2 on PA2 (TX) / PA3 (RX), AF1, wired to the ST-LINK virtual COM port;
 *        115200 8N1 from PCLK.
 * Ticks: TIM2, a 32-bit counter of PCLK = HCLK cycles (the core has no DWT cycle counter).
 *
 * Status: runs under Renode (tinyml_ptq/device/renode/stm32g0b1.repl); not yet tried on hardware.
 */
#include <stdint.h>

#include "board.h"
#include "board_config.h"
#include "cortex_m.h"
#include "stm32_board.h"

#define BAUD 115200u

/* RCC */
#define RCC_BASE 0x40021000u
#define RCC_CR TP_REG32(RCC_BASE + 0x00u)
#define RCC_CFGR TP_REG32(RCC_BASE + 0x08u)
#define RCC_PLLCFGR TP_REG32(RCC_BASE + 0x0Cu)
#define RCC_IOPENR TP_REG32(RCC_BASE + 0x34u)
#define RCC_APBENR1 TP_REG32(RCC_BASE + 0x3Cu)
#define RCC_CCIPR TP_REG32(RCC_BASE + 0x54u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_HSIDIV_MASK (7u << 11) /* 000: HSISYS = HSI16 / 1 */
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK (7u << 0)
#define RCC_CFGR_SW_PLLR (2u << 0)
#define RCC_CFGR_SWS_MASK (7u << 3)
#define RCC_CFGR_SWS_PLLR (2u << 3)
#define RCC_CFGR_HPRE_MASK (0xFu << 8)  /* 0: HCLK = SYSCLK */
#define RCC_CFGR_PPRE_MASK (7u << 12)   /* 0: PCLK = HCLK */
#define RCC_PLLCFGR_SRC_HSI16 (2u << 0)
#define RCC_PLLCFGR_M(m) (((m) - 1u) << 4)
#define RCC_PLLCFGR_N(n) ((n) << 8)
#define RCC_PLLCFGR_REN (1u << 28)
#define RCC_PLLCFGR_R(r) (((r) - 1u) << 29)
#define RCC_IOPENR_GPIOAEN (1u << 0)
#define RCC_APBENR1_TIM2EN (1u << 0)
#define RCC_APBENR1_USART2EN (1u << 17)
#define RCC_CCIPR_USART2SEL_MASK (3u << 2) /* 00: PCLK */

/* Flash */
#define FLASH_ACR TP_REG32(0x40022000u)
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_LATENCY_2WS 2u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)

/* GPIOA (on the IOPORT bus) */
#define GPIOA_BASE 0x50000000u
#define GPIOA_MODER TP_REG32(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR TP_REG32(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR TP_REG32(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL TP_REG32(GPIOA_BASE + 0x20u)
#define PIN_TX 2u
#define PIN_RX 3u
#define AF_USART2 1u

/* TIM2 */
#define TIM2_BASE 0x40000000u
#define TIM2_CR1 TP_REG32(TIM2_BASE + 0x00u)
#define TIM2_EGR TP_REG32(TIM2_BASE + 0x14u)
#define TIM2_PSC TP_REG32(TIM2_BASE + 0x28u)
#define TIM2_ARR TP_REG32(TIM2_BASE + 0x2Cu)
#define TIM_CR1_CEN (1u << 0)
#define TIM_EGR_UG (1u << 0)

void stm32_clock_init(void)
{
    /* Flash wait states before raising the clock: 2 for HCLK <= 64 MHz in Range 1. */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_LATENCY_2WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_ACR_LATENCY_2WS) {
    }

    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION;
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }

    /* PLL: HSI16 / 1 = 16 MHz input, x8 = 128 MHz VCO, /2 = 64 MHz on PLLRCLK. */
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    RCC_PLLCFGR = RCC_PLLCFGR_SRC_HSI16 | RCC_PLLCFGR_M(1u) | RCC_PLLCFGR_N(8u) | RCC_PLLCFGR_R(2u) |
                  RCC_PLLCFGR_REN;
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    RCC_CFGR = (RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE_MASK | RCC_CFGR_SW_MASK)) | RCC_CFGR_SW_PLLR;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLLR) {
    }
}

void stm32_uart_init(void)
{
    RCC_IOPENR |= RCC_IOPENR_GPIOAEN;
    RCC_APBENR1 |= RCC_APBENR1_USART2EN;
    RCC_CCIPR &= ~RCC_CCIPR_USART2SEL_MASK; /* USART2 clock = PCLK */
    (void)RCC_APBENR1; /* read back: the enables take effect before the peripherals are touched */

    GPIOA_MODER = (GPIOA_MODER & ~((3u << (2u * PIN_TX)) | (3u << (2u * PIN_RX)))) |
                  (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX)); /* alternate function */
    GPIOA_OSPEEDR |= (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX));
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << (2u * PIN_RX))) | (1u << (2u * PIN_RX)); /* RX pull-up */
    GPIOA_AFRL = (GPIOA_AFRL & ~((0xFu << (4u * PIN_TX)) | (0xFu << (4u * PIN_RX)))) |
                 (AF_USART2 << (4u * PIN_TX)) | (AF_USART2 << (4u * PIN_RX));

    USART2_CR1 = 0; /* FIFO mode off, 8 data bits, oversampling by 16 */
    USART2_CR2 = 0; /* 1 stop bit */
    USART2_PRESC = 0; /* kernel clock / 1 */
    /* Oversampling by 16: BRR = PCLK / baud. 64 MHz, 115200: 556. */
    USART2_BRR = (SYSCLK_HZ + BAUD / 2u) / BAUD;
    USART2_CR3 = USART_CR3_OVRDIS; /* an overrun loses a byte; the protocol retries */
    USART2_ICR = USART_ICR_ALL;
    USART2_CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}

void stm32_ticks_init(void)
{
    RCC_APBENR1 |= RCC_APBENR1_TIM2EN;
    (void)RCC_APBENR1;
    TIM2_CR1 = 0;
    TIM2_PSC = 0;           /* one count per PCLK cycle (TIMPCLK = PCLK with the APB prescaler at 1) */
    TIM2_ARR = 0xFFFFFFFFu; /* free-running over all 32 bits, wrapping like a cycle counter */
    TIM2_EGR = TIM_EGR_UG;  /* load PSC now */
    STM32_TICK_COUNTER = 0;
    TIM2_CR1 = TIM_CR1_CEN;
}
