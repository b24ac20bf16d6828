/* tinyml-ptq device application: serves the model over the serial protocol.
 *
 * Request/reply, one frame each way (docs/protocol.md): INFO, LOAD_INPUT,
 * INVOKE, PROFILE, OP_NAMES. Malformed frames get an error reply and the device
 * keeps serving. No printf, no heap: replies are streamed with a running CRC.
 */
#include <stdint.h>
#include <string.h>

#include "app_config.h"
#include "board.h"
#include "model.h"
#include "protocol.h"

#ifndef TP_MAX_PAYLOAD
#define TP_MAX_PAYLOAD 1024u
#endif

static uint8_t rx_payload[TP_MAX_PAYLOAD];
static uint32_t op_ticks[MODEL_NUM_OPS];

static uint32_t string_length(const char *s)
{
    const uint32_t n = (uint32_t)strlen(s);
    return n > 255u ? 255u : n;
}

static void put_string(const char *s)
{
    const uint32_t n = string_length(s);
    tp_put_u8((uint8_t)n);
    tp_put_bytes(s, n);
}

static uint32_t tensor_info_size(const model_tensor_info *t)
{
    return 1u + 1u + 4u * (uint32_t)t->rank + 4u + 4u + 4u;
}

static void put_tensor_info(const model_tensor_info *t)
{
    tp_put_u8((uint8_t)t->type);
    tp_put_u8((uint8_t)t->rank);
    for (int32_t i = 0; i < t->rank; ++i) {
        tp_put_u32((uint32_t)t->shape[i]);
    }
    tp_put_f32(t->scale);
    tp_put_u32((uint32_t)t->zero_point);
    tp_put_u32((uint32_t)t->size);
}

static uint32_t tensor_list_size(const model_tensor_info *list, int32_t count)
{
    uint32_t length = 1u;
    for (int32_t i = 0; i < count; ++i) {
        length += tensor_info_size(&list[i]);
    }
    return length;
}

static void put_tensor_list(const model_tensor_info *list, int32_t count)
{
    tp_put_u8((uint8_t)count);
    for (int32_t i = 0; i < count; ++i) {
        put_tensor_info(&list[i]);
    }
}

static void reply_info(const tp_header *req)
{
    const char *board = board_name();
    const uint32_t length = 5u * 4u + 1u + 1u + string_length(TP_MODEL_NAME) + 1u + string_length(board) + 4u +
                            tensor_list_size(model_inputs, MODEL_NUM_INPUTS) +
                            tensor_list_size(model_outputs, MODEL_NUM_OUTPUTS);
    tp_reply_begin(req->kind, req->seq, TP_STATUS_OK, length);
    tp_put_u32(TP_PROTOCOL_VERSION);
    tp_put_u32(TP_MAX_PAYLOAD);
    tp_put_u32(MODEL_ARENA_SIZE);
    tp_put_u32(board_clock_hz());
    tp_put_u32(MODEL_NUM_OPS);
    tp_put_u8(board_tick_unit());
    put_string(TP_MODEL_NAME);
    put_string(board);
    tp_put_u32(TP_MODEL_DIGEST);
    put_tensor_list(model_inputs, MODEL_NUM_INPUTS);
    put_tensor_list(model_outputs, MODEL_NUM_OUTPUTS);
    tp_reply_end();
}

static void reply_status(const tp_header *req, uint8_t status)
{
    tp_reply_begin(req->kind, req->seq, status, 0);
    tp_reply_end();
}

static void load_input(const tp_header *req)
{
    if (req->length < 4u) {
        reply_status(req, TP_STATUS_BAD_LENGTH);
        return;
    }
    const uint32_t offset = (uint32_t)rx_payload[0] | ((uint32_t)rx_payload[1] << 8) |
                            ((uint32_t)rx_payload[2] << 16) | ((uint32_t)rx_payload[3] << 24);
    const uint32_t n = req->length - 4u;
    if (offset > (uint32_t)MODEL_ALL_INPUTS_SIZE || n > (uint32_t)MODEL_ALL_INPUTS_SIZE - offset) {
        reply_status(req, TP_STATUS_BAD_OFFSET);
        return;
    }
    /* The offset addresses all inputs laid end to end: a chunk may span two of them. */
    uint32_t start = 0, copied = 0;
    for (int32_t i = 0; i < MODEL_NUM_INPUTS && copied < n; ++i) {
        const uint32_t size = (uint32_t)model_inputs[i].size;
        const uint32_t at = offset + copied;
        if (at < start + size) {
            const uint32_t room = start + size - at;
            const uint32_t take = n - copied < room ? n - copied : room;
            memcpy(model_input(i) + (at - start), rx_payload + 4 + copied, take);
            copied += take;
        }
        start += size;
    }
    reply_status(req, TP_STATUS_OK);
}

#if defined(TP_FAULT_TEST) && TP_FAULT_TEST == 2 && defined(__arm__)
/* Test builds only (make FAULT_TEST=2): INVOKE executes a permanently undefined
 * instruction (UsageFault, escalated to HardFault). Renode answers a read of an
 * unmapped address with 0 instead of a bus error, so FAULT_TEST=1 cannot fault there. */
static void provoke_fault(void)
{
    __asm__ volatile("udf #0");
}
#elif defined(TP_FAULT_TEST) && TP_FAULT_TEST
/* Test builds only (make FAULT_TEST=1): INVOKE reads an address that faults, to
 * exercise the fault handler and the FAULT frame. Read through a volatile so the
 * compiler can neither predict nor drop the access. */
static volatile uintptr_t fault_address;

static void provoke_fault(void)
{
    fault_address = board_fault_address();
    const uint32_t value = *(volatile const uint32_t *)fault_address;
    op_ticks[0] = value; /* not reached */
}
#endif

static void invoke(const tp_header *req)
{
#if defined(TP_FAULT_TEST) && TP_FAULT_TEST
    provoke_fault();
#endif
    const uint32_t start = board_ticks();
    model_invoke_profiled(board_ticks, op_ticks);
    const uint32_t total = board_ticks() - start;
    tp_reply_begin(req->kind, req->seq, TP_STATUS_OK, 4u + (uint32_t)MODEL_ALL_OUTPUTS_SIZE);
    tp_put_u32(total);
    for (int32_t i = 0; i < MODEL_NUM_OUTPUTS; ++i) {
        tp_put_bytes(model_output(i), (uint32_t)model_outputs[i].size);
    }
    tp_reply_end();
}

static void reply_profile(const tp_header *req)
{
    tp_reply_begin(req->kind, req->seq, TP_STATUS_OK, 4u + 4u * (uint32_t)MODEL_NUM_OPS);
    tp_put_u32(MODEL_NUM_OPS);
    for (uint32_t i = 0; i < (uint32_t)MODEL_NUM_OPS; ++i) {
        tp_put_u32(op_ticks[i]);
    }
    tp_reply_end();
}

static void reply_op_names(const tp_header *req)
{
    uint32_t length = 0;
    for (uint32_t i = 0; i < (uint32_t)MODEL_NUM_OPS; ++i) {
        length += 1u + string_length(model_op_names[i]);
    }
    tp_reply_begin(req->kind, req->seq, TP_STATUS_OK, length);
    for (uint32_t i = 0; i < (uint32_t)MODEL_NUM_OPS; ++i) {
        put_string(model_op_names[i]);
    }
    tp_reply_end();
}

int main(void)
{
    board_init();
    for (;;) {
        tp_header req;
        const uint8_t status = tp_receive(&req, rx_payload, sizeof rx_payload);
        if (status != TP_STATUS_OK) {
            reply_status(&req, status);
            continue;
        }
        switch (req.kind) {
        case TP_CMD_INFO:
            reply_info(&req);
            break;
        case TP_CMD_LOAD_INPUT:
            load_input(&req);
            break;
        case TP_CMD_INVOKE:
            invoke(&req);
            break;
        case TP_CMD_PROFILE:
            reply_profile(&req);
            break;
        case TP_CMD_OP_NAMES:
            reply_op_names(&req);
            break;
        default:
            reply_status(&req, TP_STATUS_UNKNOWN_COMMAND);
            break;
        }
    }
}
