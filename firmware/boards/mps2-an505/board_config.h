/* Arm MPS2 with the AN505 FPGA image (Cortex-M33 IoT Kit), as QEMU's mps2-an505.
 * The firmware runs in the Secure state (the reset state), so it uses the
 * Secure aliases of memory and peripherals (address bit 28 set). */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#define BOARD_NAME "mps2-an505"
#define BOARD_UART_BASE 0x50200000u  /* UART0, Secure alias of 0x40200000; QEMU serial0 */
#define BOARD_SYSCLK_HZ 20000000u    /* IoT Kit MAINCLK (SysTick, UART PCLK) */
#define BOARD_FAULT_ADDRESS 0xF0000000u /* nothing is mapped there: precise BusFault */

#endif /* TP_BOARD_CONFIG_H */
