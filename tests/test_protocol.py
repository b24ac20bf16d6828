"""Framing, CRC and the client's retry rules, against a small in-memory device simulator.

The simulator only exercises the host-side framing logic; the firmware itself is
tested against the real client in test_run.py and test_hil.py (QEMU and host build).
"""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.protocol import (SYNC, Cmd, DeviceClient, DeviceError, DeviceFault, DeviceTimeout, FrameDecoder,
                                        Status, crc32, describe_fault, encode_frame, parse_info)
from tinyml_ptq.device.transport import open_port, parse_tcp

IN_SIZE, OUT_SIZE, NUM_OPS, MAX_PAYLOAD = 40, 6, 3, 16


def test_frame_layout_matches_the_spec():
    payload = b"\x01\x02\x03"
    f = encode_frame(Cmd.LOAD_INPUT, 0x42, payload)
    assert f[0] == SYNC == 0xA5
    assert f[1:4] == bytes([0x02, 0x42, 0x00])
    assert struct.unpack_from("<I", f, 4)[0] == len(payload)
    assert f[8:11] == payload
    assert struct.unpack_from("<I", f, 11)[0] == zlib.crc32(f[1:11])
    assert len(f) == 8 + len(payload) + 4
    # A fixed vector (CRC 0xF047076F of 01 01 00 00 00 00 00, little-endian), so a change in
    # byte order or CRC coverage cannot go unnoticed.
    assert encode_frame(Cmd.INFO, 1).hex() == "a5010100000000006f0747f0"
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32/IEEE check value


def test_decoder_skips_garbage_and_reassembles_split_frames():
    a, b = encode_frame(Cmd.INFO, 1, b"hello"), encode_frame(Cmd.PROFILE, 2, bytes(range(20)), status=0)
    dec = FrameDecoder()
    stream = b"\x00\xa5\x13garbage" + a + b"\xff" + b
    frames = []
    for byte in stream:  # one byte at a time
        dec.feed(bytes([byte]))
        while (fr := dec.next_frame()) is not None:
            frames.append(fr)
    assert [(f.kind, f.seq, f.payload) for f in frames] == [(1, 1, b"hello"), (4, 2, bytes(range(20)))]
    assert dec.skipped > 0 and dec.pending == 0


def test_decoder_rejects_corrupted_frames_and_finds_the_next_good_one():
    good = encode_frame(Cmd.INVOKE, 7, b"\x10" * 30)
    for pos in range(1, len(good)):  # flip one bit anywhere after SYNC
        bad = bytearray(good)
        bad[pos] ^= 0x08
        dec = FrameDecoder(max_payload=64)
        dec.feed(bytes(bad) + good)
        frame = dec.next_frame()
        assert frame is not None and frame.payload == b"\x10" * 30 and frame.seq == 7, pos
        assert dec.corrupt >= 1


def test_decoder_does_not_wait_for_an_impossible_length():
    frame = bytearray(encode_frame(Cmd.INVOKE, 3, b"x" * 10))
    frame[4:8] = struct.pack("<I", 5_000_000)  # corrupted length: would otherwise wait for 5 MB
    dec = FrameDecoder(max_payload=1024)
    dec.feed(bytes(frame) + encode_frame(Cmd.INVOKE, 4, b"y"))
    got = dec.next_frame()
    assert got is not None and got.seq == 4


# --- a simulated device -----------------------------------------------------------------------


MODEL_DIGEST = 0x1234ABCD


def _info_payload(version: int = 2) -> bytes:
    def tensor(shape, scale, zp, size):
        return bytes([9, len(shape)]) + struct.pack(f"<{len(shape)}I", *shape) + struct.pack("<fiI", scale, zp, size)

    name, board = b"sim", b"simboard"
    return (struct.pack("<5IB", version, MAX_PAYLOAD, 512, 1000, NUM_OPS, 0) + bytes([len(name)]) + name
            + bytes([len(board)]) + board + struct.pack("<I", MODEL_DIGEST)
            + bytes([1]) + tensor((1, IN_SIZE), 0.5, -3, IN_SIZE)
            + bytes([1]) + tensor((1, OUT_SIZE), 0.25, 7, OUT_SIZE))


class SimDevice:
    """Speaks the protocol in memory; `damage(reply_index, bytes) -> bytes` tampers with replies."""

    def __init__(self, damage=None, silent=False, fault_on_invoke=False):
        self.decoder = FrameDecoder(max_payload=MAX_PAYLOAD)
        self.out = bytearray()
        self.input = bytearray(IN_SIZE)
        self.replies = 0
        self.damage = damage
        self.silent = silent
        self.fault_on_invoke = fault_on_invoke
        self.invokes = 0
        self.requests: list[tuple[int, int]] = []
        self.protocol_version = 2

    def write(self, data: bytes) -> None:
        self.decoder.feed(data)
        while (req := self.decoder.next_frame()) is not None:
            self.requests.append((req.kind, req.seq))
            if not self.silent:
                self._serve(req)

    def _reply(self, kind, seq, status=0, payload=b"") -> None:
        frame = encode_frame(kind, seq, payload, status)
        if self.damage is not None:
            frame = self.damage(self.replies, frame)
        self.replies += 1
        self.out += frame

    def _serve(self, req) -> None:
        if req.kind == Cmd.INFO:
            self._reply(req.kind, req.seq, 0, _info_payload(self.protocol_version))
        elif req.kind == Cmd.LOAD_INPUT:
            (offset,) = struct.unpack_from("<I", req.payload)
            data = req.payload[4:]
            if offset + len(data) > IN_SIZE:
                return self._reply(req.kind, req.seq, Status.BAD_OFFSET)
            self.input[offset:offset + len(data)] = data
            self._reply(req.kind, req.seq)
        elif req.kind == Cmd.INVOKE:
            self.invokes += 1
            if self.fault_on_invoke:
                regs = (0x1234, 0x5678, 0x21000000, 1 << 15 | 1 << 9, 1 << 30, 0, 0xF0000000)
                return self._reply(Cmd.FAULT, 0, Status.FAULT, struct.pack("<7I", *regs))
            out = bytes((sum(self.input) + k) & 0xFF for k in range(OUT_SIZE))
            self.input[:] = bytes(IN_SIZE)  # like a model that reuses its input's memory
            self._reply(req.kind, req.seq, 0, struct.pack("<I", 1000 + self.invokes) + out)
        elif req.kind == Cmd.PROFILE:
            self._reply(req.kind, req.seq, 0, struct.pack("<4I", NUM_OPS, 1, 2, 3))
        elif req.kind == Cmd.OP_NAMES:
            self._reply(req.kind, req.seq, 0, b"".join(bytes([len(n)]) + n for n in (b"A", b"BB", b"CCC")))
        else:
            self._reply(req.kind, req.seq, Status.UNKNOWN_COMMAND)

    def read(self, timeout: float) -> bytes:
        if not self.out:
            time.sleep(min(timeout, 0.01))
            return b""
        data, self.out[:] = bytes(self.out), b""
        return data

    def close(self) -> None:
        pass


def expected_output(data: bytes) -> bytes:
    return bytes((sum(data) + k) & 0xFF for k in range(OUT_SIZE))


def client(dev: SimDevice, **kw) -> DeviceClient:
    kw.setdefault("timeout", 0.3)
    kw.setdefault("quiet", 0.05)
    return DeviceClient(dev, **kw)


def test_client_info_chunked_load_invoke_profile_names():
    dev = SimDevice()
    c = client(dev)
    info = c.info()
    assert (info.model_name, info.board_name, info.max_payload, info.num_ops) == ("sim", "simboard", 16, 3)
    assert info.inputs[0].shape == (1, IN_SIZE) and info.inputs[0].scale == 0.5 and info.inputs[0].zero_point == -3
    assert info.inputs[0].dtype == "int8" and info.model_digest == MODEL_DIGEST
    assert (info.input_size, info.output_size) == (IN_SIZE, OUT_SIZE)
    assert info.tick_unit_name == "instructions"
    data = bytes(range(IN_SIZE))
    res = c.invoke(data)
    assert res.output == expected_output(data)
    loads = [r for r in dev.requests if r[0] == Cmd.LOAD_INPUT]
    assert len(loads) == 4  # 40 bytes in chunks of max_payload - 4 = 12
    assert c.profile() == [1, 2, 3]
    assert c.op_names() == ["A", "BB", "CCC"]
    assert parse_info(_info_payload()) == info


def test_firmware_of_another_protocol_version_is_refused_at_once():
    dev = SimDevice()
    dev.protocol_version = 1  # an older firmware: its INFO is laid out differently
    with pytest.raises(DeviceError, match="protocol version 1; this tinyml-ptq speaks version 2; regenerate"):
        client(dev).info()
    assert len(dev.requests) == 1  # a definite answer, not a damaged one: no retry


def _corrupt_reply(which: set[int]):
    def damage(i, frame):
        if i in which:
            frame = bytearray(frame)
            frame[len(frame) // 2] ^= 0x40
        return bytes(frame)
    return damage


def test_corrupted_replies_are_retried_with_a_new_seq_and_the_input_reloaded():
    data = bytes(range(3, 3 + IN_SIZE))
    dev = SimDevice(damage=_corrupt_reply({0, 6}))  # INFO's reply, and the first INVOKE's
    c = client(dev)
    c.info()
    res = c.invoke(data)
    assert res.output == expected_output(data)  # the input was loaded again before the retried INVOKE
    seqs = [seq for _, seq in dev.requests]
    assert len(seqs) == len(set(seqs)), "every attempt has a fresh seq"
    assert c.stats.retries == 2


def test_stale_and_mismatched_replies_are_never_accepted():
    def damage(i, frame):
        if i == 1:  # reply to the first PROFILE: put a stale PROFILE reply (old seq) in front of it
            stale = encode_frame(Cmd.PROFILE, frame[2] - 1, struct.pack("<4I", NUM_OPS, 9, 9, 9))
            other = encode_frame(Cmd.OP_NAMES, frame[2], b"\x01Z\x01Z\x01Z")  # right seq, wrong kind
            return stale + other + frame
        return frame

    c = client(SimDevice(damage=damage))
    c.info()
    assert c.profile() == [1, 2, 3]
    assert c.stats.stale_frames == 2


def test_error_status_from_corruption_is_retried_and_a_real_refusal_is_not():
    calls = {"n": 0}

    def damage(i, frame):
        if i == 1:  # the device says our request arrived damaged
            calls["n"] += 1
            return encode_frame(frame[1], frame[2], b"", Status.BAD_CRC)
        return frame

    c = client(SimDevice(damage=damage))
    c.info()
    assert c.profile() == [1, 2, 3] and calls["n"] == 1
    with pytest.raises(DeviceError, match="BAD_OFFSET"):
        c.load_input(b"\x00" * 8, offset=IN_SIZE)


def test_fault_frame_raises_with_registers():
    c = client(SimDevice(fault_on_invoke=True))
    c.info()
    with pytest.raises(DeviceFault) as exc:
        c.invoke(bytes(IN_SIZE))
    assert exc.value.registers["bfar"] == 0xF0000000
    assert exc.value.at_sample(5).sample == 5
    text = str(exc.value.at_sample(5))
    assert "sample 5" in text and "pc=0x00001234" in text and "precise data bus error" in text
    assert "0xf0000000" in describe_fault(exc.value.registers)


def test_silent_device_times_out_with_a_clear_error():
    dev = SimDevice(silent=True)
    c = client(dev, timeout=0.2, silent_retries=1)
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no reply to INFO"):
        c.info()
    assert time.monotonic() - start < 2.0
    assert len(dev.requests) == 2  # bounded


def test_persistent_corruption_gives_up_after_bounded_retries():
    dev = SimDevice(damage=lambda i, f: f[:-1] + bytes([f[-1] ^ 1]))  # every CRC wrong
    c = client(dev, retries=3)
    with pytest.raises(DeviceError, match="after 4 attempts"):
        c.info()
    assert len(dev.requests) == 4


def test_port_addresses():
    assert parse_tcp("socket://127.0.0.1:5555") == ("127.0.0.1", 5555)
    assert parse_tcp("tcp:localhost:80") == ("localhost", 80)
    assert parse_tcp("/dev/ttyACM0") is None
    with pytest.raises(UserError):
        parse_tcp("socket://nohost")
    with pytest.raises(UserError, match="does not exist"):
        open_port("/dev/does-not-exist-tty")
