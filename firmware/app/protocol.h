/* Device side of the tinyml-ptq serial protocol (see docs/protocol.md).
 *
 * Frame: A5 | kind | seq | status | u32 length | payload | u32 CRC-32
 * (little-endian; the CRC is IEEE 802.3 over kind..payload).
 */
#ifndef TP_PROTOCOL_H
#define TP_PROTOCOL_H

#include <stdint.h>

#define TP_PROTOCOL_VERSION 2u
#define TP_SYNC 0xA5u

/* Commands */
#define TP_CMD_INFO 0x01u
#define TP_CMD_LOAD_INPUT 0x02u
#define TP_CMD_INVOKE 0x03u
#define TP_CMD_PROFILE 0x04u
#define TP_CMD_OP_NAMES 0x05u
#define TP_CMD_FAULT 0x7Fu

/* Status codes */
#define TP_STATUS_OK 0u
#define TP_STATUS_BAD_CRC 1u
#define TP_STATUS_BAD_LENGTH 2u
#define TP_STATUS_UNKNOWN_COMMAND 3u
#define TP_STATUS_BAD_OFFSET 4u
#define TP_STATUS_BAD_SYNC 5u
#define TP_STATUS_FAULT 0x7Fu

/* A byte gap longer than this inside a frame abandons the frame (resynchronise). */
#define TP_BYTE_TIMEOUT_MS 200u
/* After an oversized header the rest of the frame is skipped until the line has been
 * quiet this long; then BAD_LENGTH is sent. */
#define TP_DRAIN_QUIET_MS 50u

typedef struct {
    uint8_t kind;
    uint8_t seq;
    uint8_t status;
    uint32_t length;
} tp_header;

uint32_t tp_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n);

/* Waits for the next request. Returns TP_STATUS_OK with the payload in buf, or an
 * error status to send back for the request in *hdr (kind and seq as received). */
uint8_t tp_receive(tp_header *hdr, uint8_t *buf, uint32_t capacity);

/* A reply is streamed: begin (header), any number of put calls totalling `length`
 * bytes, then end (CRC, flush). No reply buffer is needed. */
void tp_reply_begin(uint8_t kind, uint8_t seq, uint8_t status, uint32_t length);
void tp_put_bytes(const void *data, uint32_t n);
void tp_put_u8(uint8_t v);
void tp_put_u32(uint32_t v);
void tp_put_f32(float v);
void tp_reply_end(void);

/* Sends the unsolicited FAULT frame: regs = pc, lr, xpsr, cfsr, hfsr, mmfar, bfar.
 * Safe to call from a fault handler (polled output, no allocation). */
void protocol_send_fault(const uint32_t regs[7]);

#endif /* TP_PROTOCOL_H */
