/* Framing and CRC-32 of the tinyml-ptq serial protocol, device side. */
#include "protocol.h"

#include <string.h>

#include "board.h"

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zlib.crc32, half a byte
 * at a time: a 64-byte table instead of 1 KB. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t tp_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n)
{
    crc = ~crc;
    for (uint32_t i = 0; i < n; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    }
    return ~crc;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Reads n bytes, each within TP_BYTE_TIMEOUT_MS of the previous; 0 on a gap. */
static int read_bytes(uint8_t *dst, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        const int c = board_uart_getc(TP_BYTE_TIMEOUT_MS);
        if (c < 0) {
            return 0;
        }
        dst[i] = (uint8_t)c;
    }
    return 1;
}

uint8_t tp_receive(tp_header *hdr, uint8_t *buf, uint32_t capacity)
{
    uint32_t skipped = 0;
    for (;;) {
        const int c = board_uart_getc(0);
        if (c != (int)TP_SYNC) {
            if (c >= 0) {
                ++skipped; /* garbage between frames */
            }
            continue;
        }
        uint8_t head[7];
        if (!read_bytes(head, sizeof head)) {
            continue; /* sender stopped mid-header: scan for the next SYNC */
        }
        hdr->kind = head[0];
        hdr->seq = head[1];
        hdr->status = head[2];
        hdr->length = get_u32(head + 3);
        if (hdr->length > capacity) {
            /* Skip whatever of the frame follows (until the line is quiet), then reply: a
             * SYNC byte inside the skipped payload cannot start a bogus frame. */
            while (board_uart_getc(TP_DRAIN_QUIET_MS) >= 0) {
            }
            return TP_STATUS_BAD_LENGTH;
        }
        uint8_t tail[4];
        if (!read_bytes(buf, hdr->length) || !read_bytes(tail, sizeof tail)) {
            continue;
        }
        uint32_t crc = tp_crc32_update(0, head, sizeof head);
        crc = tp_crc32_update(crc, buf, hdr->length);
        if (crc != get_u32(tail)) {
            /* Out of step (garbage came first) or corrupted in transit: either way the
             * host retries. */
            return skipped ? TP_STATUS_BAD_SYNC : TP_STATUS_BAD_CRC;
        }
        return TP_STATUS_OK;
    }
}

static uint32_t tx_crc;

void tp_put_bytes(const void *data, uint32_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    tx_crc = tp_crc32_update(tx_crc, p, n);
    for (uint32_t i = 0; i < n; ++i) {
        board_uart_putc(p[i]);
    }
}

void tp_put_u8(uint8_t v)
{
    tp_put_bytes(&v, 1);
}

void tp_put_u32(uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tp_put_bytes(b, sizeof b);
}

void tp_put_f32(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    tp_put_u32(bits);
}

void tp_reply_begin(uint8_t kind, uint8_t seq, uint8_t status, uint32_t length)
{
    board_uart_putc(TP_SYNC);
    tx_crc = 0;
    tp_put_u8(kind);
    tp_put_u8(seq);
    tp_put_u8(status);
    tp_put_u32(length);
}

void tp_reply_end(void)
{
    const uint32_t crc = tx_crc;
    const uint8_t b[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    for (uint32_t i = 0; i < sizeof b; ++i) {
        board_uart_putc(b[i]);
    }
    board_uart_flush();
}

void protocol_send_fault(const uint32_t regs[7])
{
    tp_reply_begin(TP_CMD_FAULT, 0, TP_STATUS_FAULT, 7u * 4u);
    for (uint32_t i = 0; i < 7; ++i) {
        tp_put_u32(regs[i]);
    }
    tp_reply_end();
}
