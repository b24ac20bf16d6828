/* Arm MPS2 with the AN500 FPGA image (Cortex-M7 with double-precision FPU), as QEMU's mps2-an500 machine. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#define BOARD_NAME "mps2-an500"
#define BOARD_UART_BASE 0x40004000u  /* UART0 (CMSDK APB UART); QEMU serial0 */
#define BOARD_SYSCLK_HZ 25000000u    /* FPGA system clock (SysTick, UART PCLK) */
#define BOARD_FAULT_ADDRESS 0xF0000000u /* nothing is mapped there: precise BusFault */

#endif /* TP_BOARD_CONFIG_H */
