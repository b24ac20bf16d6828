/* Arm MPS3 with the AN547 FPGA image (Cortex-M55 on the Corstone-300 / SSE-300 subsystem),
 * as QEMU's mps3-an547. The firmware runs in the Secure state (the reset state), so it uses
 * the Secure aliases of memory and peripherals (address bit 28 set), as on mps2-an505. */
#ifndef TP_BOARD_CONFIG_H
#define TP_BOARD_CONFIG_H

#define BOARD_NAME "mps3-an547"
#define BOARD_UART_BASE 0x59303000u  /* UART0, Secure alias of 0x49303000; QEMU serial0 */
#define BOARD_SYSCLK_HZ 32000000u    /* SYSCLK/MAINCLK: the core clock, which SysTick counts */
#define BOARD_UART_PCLK_HZ 25000000u /* the FPGA's APB peripheral clock (UART PCLK) */
#define BOARD_FAULT_ADDRESS 0xF0000000u /* nothing is mapped there: precise BusFault */

#endif /* TP_BOARD_CONFIG_H */
