/* Fuzz target: the firmware's frame parser (firmware/app/protocol.c, tp_receive), built for the
 * host. The input is what arrives on the UART, byte by byte; after its last byte the line stays
 * silent. Every request tp_receive accepts must fit the receive buffer, which is allocated at its
 * exact capacity so that AddressSanitizer sees any byte written past it. */
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>

#include "board.h"
#include "protocol.h"

#define CAPACITY 1024u

static const uint8_t *line;
static size_t line_size, line_pos;
static jmp_buf line_silent;

int board_uart_getc(uint32_t timeout_ms)
{
    if (line_pos < line_size) {
        return line[line_pos++];
    }
    if (timeout_ms == 0) {
        longjmp(line_silent, 1); /* the firmware would wait for ever: this input is done */
    }
    return -1; /* a gap longer than the timeout */
}

void board_uart_putc(uint8_t byte)
{
    (void)byte;
}

void board_uart_flush(void)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *volatile buf = malloc(CAPACITY);
    line = data;
    line_size = size;
    line_pos = 0;
    if (setjmp(line_silent) == 0) {
        for (;;) {
            tp_header hdr;
            const uint8_t status = tp_receive(&hdr, buf, CAPACITY);
            if (status == TP_STATUS_OK && hdr.length > CAPACITY) {
                abort();
            }
        }
    }
    free(buf);
    return 0;
}
