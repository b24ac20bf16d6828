/* ST NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F): register-level bring-up, no vendor HAL.
 *
 * Clock: HSI16 -> PLL (M=4, N=60, R=2) = 120 MHz SYSCLK = HCLK = PCLK1 = PCLK2,
 *        in voltage Range 1 boost mode with 5 flash wait states (RM0432 6.2, 3.3.3).
 * Link:  LPUART1 on PG7 (TX) / PG8 (RX), AF8, wired to the ST-LINK virtual COM
 *        port; 115200 8N1 from PCLK1. Port G pins 2..15 are supplied by VDDIO2,
 *        which must be declared valid (PWR_CR2.IOSV) before use.
 * Ticks: DWT CYCCNT (board_stm32.c).
 *
 * Status: runs under Renode (tinyml_ptq/device/renode/stm32l4r5.repl); not yet tried on hardware.
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
#define RCC_AHB2ENR TP_REG32(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 TP_REG32(RCC_BASE + 0x58u)
#define RCC_APB1ENR2 TP_REG32(RCC_BASE + 0x5Cu)
#define RCC_CCIPR TP_REG32(RCC_BASE + 0x88u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SW_PLL (3u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2 (0x8u << 4)
#define RCC_CFGR_PPRE_MASK (0x3Fu << 8) /* PPRE1 and PPRE2: /1 */
#define RCC_PLLCFGR_SRC_HSI16 (2u << 0)
#define RCC_PLLCFGR_M(m) (((m) - 1u) << 4)
#define RCC_PLLCFGR_N(n) ((n) << 8)
#define RCC_PLLCFGR_REN (1u << 24)
#define RCC_PLLCFGR_R_DIV2 (0u << 25)
#define RCC_AHB2ENR_GPIOGEN (1u << 6)
#define RCC_APB1ENR1_PWREN (1u << 28)
#define RCC_APB1ENR2_LPUART1EN (1u << 0)
#define RCC_CCIPR_LPUART1SEL_MASK (3u << 10) /* 00: PCLK1 */

/* PWR */
#define PWR_BASE 0x40007000u
#define PWR_CR1 TP_REG32(PWR_BASE + 0x00u)
#define PWR_CR2 TP_REG32(PWR_BASE + 0x04u)
#define PWR_SR2 TP_REG32(PWR_BASE + 0x14u)
#define PWR_CR5 TP_REG32(PWR_BASE + 0x80u)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_CR2_IOSV (1u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8) /* 0: Range 1 boost mode (up to 120 MHz) */

/* Flash */
#define FLASH_ACR TP_REG32(0x40022000u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_LATENCY_5WS 5u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOG */
#define GPIOG_BASE 0x48001800u
#define GPIOG_MODER TP_REG32(GPIOG_BASE + 0x00u)
#define GPIOG_OSPEEDR TP_REG32(GPIOG_BASE + 0x08u)
#define GPIOG_PUPDR TP_REG32(GPIOG_BASE + 0x0Cu)
#define GPIOG_AFRL TP_REG32(GPIOG_BASE + 0x20u)
#define GPIOG_AFRH TP_REG32(GPIOG_BASE + 0x24u)
#define PIN_TX 7u
#define PIN_RX 8u
#define AF_LPUART1 8u

static void delay_cycles(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; ++i) {
    }
}

void stm32_clock_init(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC_APB1ENR1; /* read back: the enable takes effect before PWR is touched */

    /* Range 1 boost: VOS = Range 1, R1MODE = 0; wait for the regulator. */
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    PWR_CR5 &= ~PWR_CR5_R1MODE;
    while (PWR_SR2 & PWR_SR2_VOSF) {
    }

    /* Flash wait states before raising the clock. */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN |
                FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_ACR_LATENCY_5WS) {
    }

    RCC_CR |= RCC_CR_HSION;
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }

    /* PLL: HSI16 / 4 = 4 MHz input, x60 = 240 MHz VCO, /2 = 120 MHz on PLLCLK (R). */
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    RCC_PLLCFGR = RCC_PLLCFGR_SRC_HSI16 | RCC_PLLCFGR_M(4u) | RCC_PLLCFGR_N(60u) | RCC_PLLCFGR_R_DIV2 |
                  RCC_PLLCFGR_REN;
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    /* Above 80 MHz: switch with AHB at /2, wait 1 us, then AHB /1 (RM0432 6.2.x). */
    RCC_CFGR = (RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE_MASK)) | RCC_CFGR_HPRE_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }
    delay_cycles(200u); /* > 1 us at 60 MHz */
    RCC_CFGR &= ~RCC_CFGR_HPRE_MASK;
}

void stm32_uart_init(void)
{
    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
    RCC_APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
    RCC_CCIPR &= ~RCC_CCIPR_LPUART1SEL_MASK; /* LPUART1 clock = PCLK1 */
    (void)RCC_APB1ENR2;
    PWR_CR2 |= PWR_CR2_IOSV; /* VDDIO2 valid: PG2..PG15 usable */

    GPIOG_MODER = (GPIOG_MODER & ~((3u << (2u * PIN_TX)) | (3u << (2u * PIN_RX)))) |
                  (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX)); /* alternate function */
    GPIOG_OSPEEDR |= (2u << (2u * PIN_TX)) | (2u << (2u * PIN_RX));
    GPIOG_PUPDR = (GPIOG_PUPDR & ~(3u << (2u * PIN_RX))) | (1u << (2u * PIN_RX)); /* RX pull-up */
    GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << (4u * PIN_TX))) | (AF_LPUART1 << (4u * PIN_TX));
    GPIOG_AFRH = (GPIOG_AFRH & ~(0xFu << (4u * (PIN_RX - 8u)))) | (AF_LPUART1 << (4u * (PIN_RX - 8u)));

    LPUART1_CR1 = 0;
    /* LPUART: baud = 256 * fck / BRR (BRR must be >= 0x300). 120 MHz, 115200: 266667. */
    LPUART1_BRR = (uint32_t)(((uint64_t)SYSCLK_HZ * 256u + BAUD / 2u) / BAUD);
    LPUART1_CR3 = LPUART_CR3_OVRDIS; /* an overrun loses a byte; the protocol retries */
    LPUART1_ICR = LPUART_ICR_ALL;
    LPUART1_CR1 = LPUART_CR1_TE | LPUART_CR1_RE | LPUART_CR1_UE;
}
