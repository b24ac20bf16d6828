/* ST 32F746GDISCOVERY (STM32F746NG, Cortex-M7 with single-precision FPU): register-level
 * bring-up, no vendor HAL.
 *
 * Clock: HSE 25 MHz crystal -> PLL (M=25, N=432, P=2) = 216 MHz SYSCLK = HCLK, in
 *        voltage scale 1 with over-drive, 7 flash wait states (RM0385 3.3.2, 5.1.4);
 *        APB1 = HCLK/4 = 54 MHz, APB2 = HCLK/2 = 108 MHz. Caches stay off.
 * Link:  USART1 on PA9 (TX) / PB7 (RX), AF7, wired to the ST-LINK virtual COM port;
 *        115200 8N1 from PCLK2.
 * Ticks: DWT CYCCNT (board_stm32.c).
 */
#include <stdint.h>

#include "board.h"
#include "board_config.h"
#include "cortex_m.h"
#include "stm32_board.h"

#define PCLK2_HZ (SYSCLK_HZ / 2u)
#define BAUD 115200u

/* RCC */
#define RCC_BASE 0x40023800u
#define RCC_CR TP_REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR TP_REG32(RCC_BASE + 0x04u)
#define RCC_CFGR TP_REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR TP_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR TP_REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR TP_REG32(RCC_BASE + 0x44u)
#define RCC_DCKCFGR2 TP_REG32(RCC_BASE + 0x90u)
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
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_DCKCFGR2_USART1SEL_MASK (3u << 0) /* 00: PCLK2 */

/* PWR */
#define PWR_CR1 TP_REG32(0x40007000u)
#define PWR_CSR1 TP_REG32(0x40007004u)
#define PWR_CR1_VOS_SCALE1 (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

/* Flash interface */
#define FLASH_ACR TP_REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_LATENCY_7WS 7u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ARTEN (1u << 9)

/* GPIO: TX on PA9, RX on PB7 */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(base) TP_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base) TP_REG32((base) + 0x08u)
#define GPIO_PUPDR(base) TP_REG32((base) + 0x0Cu)
#define GPIO_AFRL(base) TP_REG32((base) + 0x20u)
#define GPIO_AFRH(base) TP_REG32((base) + 0x24u)
#define PIN_TX 9u
#define PIN_RX 7u
#define AF_USART1 7u

void stm32_clock_init(void)
{
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the enable takes effect before PWR is touched */
    PWR_CR1 |= PWR_CR1_VOS_SCALE1;

    RCC_CR |= RCC_CR_HSEON;
    while (!(RCC_CR & RCC_CR_HSERDY)) {
    }

    /* PLL: HSE 25 MHz / 25 = 1 MHz input, x432 = 432 MHz VCO, /2 = 216 MHz (P), /9 = 48 MHz (Q). */
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_FIELDS) | RCC_PLLCFGR_SRC_HSE | RCC_PLLCFGR_M(25u) |
                  RCC_PLLCFGR_N(432u) | RCC_PLLCFGR_P_DIV2 | RCC_PLLCFGR_Q(9u);
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    /* Over-drive for more than 180 MHz, then the switch to it (RM0385 4.1.4). */
    PWR_CR1 |= PWR_CR1_ODEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODRDY)) {
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODSWRDY)) {
    }

    FLASH_ACR = FLASH_ACR_LATENCY_7WS | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_ACR_LATENCY_7WS) {
    }

    RCC_CFGR = (RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE1_MASK | RCC_CFGR_PPRE2_MASK)) |
               RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }
}

void stm32_uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    RCC_DCKCFGR2 &= ~RCC_DCKCFGR2_USART1SEL_MASK; /* USART1 clock = PCLK2 */
    (void)RCC_APB2ENR;

    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << (2u * PIN_TX))) | (2u << (2u * PIN_TX));
    GPIO_OSPEEDR(GPIOA_BASE) |= 2u << (2u * PIN_TX);
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << (4u * (PIN_TX - 8u)))) |
                            (AF_USART1 << (4u * (PIN_TX - 8u)));
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << (2u * PIN_RX))) | (2u << (2u * PIN_RX));
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << (2u * PIN_RX))) | (1u << (2u * PIN_RX));
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << (4u * PIN_RX))) | (AF_USART1 << (4u * PIN_RX));

    USART1_CR1 = 0;
    USART1_CR2 = 0; /* 1 stop bit */
    /* Oversampling by 16: BRR = PCLK2 / baud. 108 MHz, 115200: 938. */
    USART1_BRR = (PCLK2_HZ + BAUD / 2u) / BAUD;
    USART1_CR3 = USART_CR3_OVRDIS; /* an overrun loses a byte; the protocol retries */
    USART1_ICR = USART_ICR_ALL;
    USART1_CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}
