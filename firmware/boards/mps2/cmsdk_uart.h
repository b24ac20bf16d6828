/* Arm CMSDK APB UART (MPS2 and MPS3 FPGA images, QEMU cmsdk-apb-uart): polled driver. */
#ifndef TP_CMSDK_UART_H
#define TP_CMSDK_UART_H

#include <stdint.h>

#include "cortex_m.h"

#define CMSDK_UART_DATA(base) TP_REG32((base) + 0x00u)
#define CMSDK_UART_STATE(base) TP_REG32((base) + 0x04u)
#define CMSDK_UART_CTRL(base) TP_REG32((base) + 0x08u)
#define CMSDK_UART_INTSTATUS(base) TP_REG32((base) + 0x0Cu)
#define CMSDK_UART_BAUDDIV(base) TP_REG32((base) + 0x10u)

#define CMSDK_UART_STATE_TXFULL (1u << 0)
#define CMSDK_UART_STATE_RXFULL (1u << 1)
#define CMSDK_UART_STATE_TXOVR (1u << 2)
#define CMSDK_UART_STATE_RXOVR (1u << 3)
#define CMSDK_UART_CTRL_TXEN (1u << 0)
#define CMSDK_UART_CTRL_RXEN (1u << 1)

static inline void cmsdk_uart_init(uint32_t base, uint32_t pclk_hz, uint32_t baud)
{
    uint32_t div = pclk_hz / baud;
    if (div < 16u) {
        div = 16u; /* the UART ignores divisors below 16 */
    }
    CMSDK_UART_CTRL(base) = 0;
    CMSDK_UART_BAUDDIV(base) = div;
    CMSDK_UART_STATE(base) = CMSDK_UART_STATE_TXOVR | CMSDK_UART_STATE_RXOVR; /* write 1 to clear */
    CMSDK_UART_CTRL(base) = CMSDK_UART_CTRL_TXEN | CMSDK_UART_CTRL_RXEN;
}

static inline int cmsdk_uart_rx_ready(uint32_t base)
{
    return (CMSDK_UART_STATE(base) & CMSDK_UART_STATE_RXFULL) != 0u;
}

static inline uint8_t cmsdk_uart_read(uint32_t base)
{
    return (uint8_t)CMSDK_UART_DATA(base);
}

static inline void cmsdk_uart_write(uint32_t base, uint8_t byte)
{
    while (CMSDK_UART_STATE(base) & CMSDK_UART_STATE_TXFULL) {
    }
    CMSDK_UART_DATA(base) = byte;
}

static inline void cmsdk_uart_flush(uint32_t base)
{
    while (CMSDK_UART_STATE(base) & CMSDK_UART_STATE_TXFULL) {
    }
}

#endif /* TP_CMSDK_UART_H */
