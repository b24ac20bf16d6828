/* Arm MPS2 with the AN386 FPGA image (Cortex-M4 with FPU), as QEMU's mps2-an386 machine. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#define BOARD_NAME "mps2-an386"
#define BOARD_UART_BASE 0x40004000u  /* UART0 (CMSDK APB UART); QEMU serial0 */
#define BOARD_SYSCLK_HZ 25000000u    /* FPGA system clock (SysTick, UART PCLK) */
#define BOARD_FAULT_ADDRESS 0xF0000000u /* nothing is mapped there: precise BusFault */

#endif /* TP_BOARD_CONFIG_H */
