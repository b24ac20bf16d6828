"""Tiny test-side client of the device protocol (README "Device protocol").

Launches a firmware image (QEMU for MPS2 boards, the executable for the host
board) with the serial port on its stdin/stdout, and exchanges frames. Kept
minimal and independent of tinyml_ptq.protocol so the firmware is tested
against the spec itself.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

SYNC = 0xA5
INFO, LOAD_INPUT, INVOKE, PROFILE, OP_NAMES, FAULT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x7F
OK, BAD_CRC, BAD_LENGTH, UNKNOWN_COMMAND, BAD_OFFSET, BAD_SYNC = 0, 1, 2, 3, 4, 5
STATUS_FAULT = 0x7F


def frame(kind: int, seq: int, payload: bytes = b"", status: int = 0) -> bytes:
    body = struct.pack("<BBBI", kind, seq, status, len(payload)) + payload
    return bytes([SYNC]) + body + struct.pack("<I", zlib.crc32(body))


@dataclass
class Reply:
    kind: int
    seq: int
    status: int
    payload: bytes


@dataclass
class TensorInfo:
    shape: list[int]
    scale: float
    zero_point: int
    size: int


@dataclass
class Info:
    version: int
    max_payload: int
    arena_bytes: int
    clock_hz: int
    num_ops: int
    tick_unit: int
    model_name: str
    board_name: str
    input: TensorInfo
    output: TensorInfo


def parse_info(p: bytes) -> Info:
    version, max_payload, arena, clock, num_ops, unit = struct.unpack_from("<5IB", p, 0)
    pos = 21

    def string() -> str:
        nonlocal pos
        n = p[pos]
        s = p[pos + 1: pos + 1 + n].decode()
        pos += 1 + n
        return s

    def tensor() -> TensorInfo:
        nonlocal pos
        rank = p[pos]
        dims = list(struct.unpack_from(f"<{rank}I", p, pos + 1))
        pos += 1 + 4 * rank
        scale, zp, size = struct.unpack_from("<fiI", p, pos)
        pos += 12
        return TensorInfo(dims, scale, zp, size)

    model, board = string(), string()
    inp, out = tensor(), tensor()
    assert pos == len(p), f"INFO payload has {len(p) - pos} trailing bytes"
    return Info(version, max_payload, arena, clock, num_ops, unit, model, board, inp, out)


def qemu_command(machine: str, elf: str | Path) -> list[str]:
    return ["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "none", "-serial", "stdio",
            "-icount", "shift=0", "-kernel", str(elf)]


class Device:
    """A running firmware image; use as a context manager (the process is killed on exit)."""

    def __init__(self, command: list[str]):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.buffer = bytearray()
        self.seq = 0

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"device sent {len(self.buffer)} of {n} bytes")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                    raise EOFError(f"device closed its output; stderr: {err[-500:]}")
                self.buffer += chunk
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def read_frame(self, timeout: float = 30.0) -> Reply:
        """Next valid frame; asserts the CRC (the emulated link is clean)."""
        deadline = time.monotonic() + timeout
        while self._read(1, deadline)[0] != SYNC:
            pass
        head = self._read(7, deadline)
        kind, seq, status, length = struct.unpack("<BBBI", head)
        payload = self._read(length, deadline)
        (crc,) = struct.unpack("<I", self._read(4, deadline))
        assert crc == zlib.crc32(head + payload), "reply CRC mismatch"
        return Reply(kind, seq, status, payload)

    def request(self, kind: int, payload: bytes = b"", timeout: float = 30.0) -> Reply:
        self.seq = (self.seq + 1) & 0xFF
        self.write(frame(kind, self.seq, payload))
        reply = self.read_frame(timeout)
        assert (reply.kind, reply.seq) == (kind, self.seq), f"stale or mismatched reply {reply}"
        return reply

    def info(self) -> Info:
        reply = self.request(INFO)
        assert reply.status == OK, reply
        return parse_info(reply.payload)

    def load_input(self, data: bytes, max_payload: int) -> None:
        chunk = max_payload - 4
        for offset in range(0, len(data), chunk):
            reply = self.request(LOAD_INPUT, struct.pack("<I", offset) + data[offset: offset + chunk])
            assert reply.status == OK, reply

    def invoke(self) -> tuple[int, bytes]:
        reply = self.request(INVOKE)
        assert reply.status == OK, reply
        (ticks,) = struct.unpack_from("<I", reply.payload)
        return ticks, reply.payload[4:]

    def profile(self) -> list[int]:
        reply = self.request(PROFILE)
        assert reply.status == OK, reply
        (n,) = struct.unpack_from("<I", reply.payload)
        return list(struct.unpack_from(f"<{n}I", reply.payload, 4))

    def op_names(self) -> list[str]:
        reply = self.request(OP_NAMES)
        assert reply.status == OK, reply
        names, pos = [], 0
        while pos < len(reply.payload):
            n = reply.payload[pos]
            names.append(reply.payload[pos + 1: pos + 1 + n].decode())
            pos += 1 + n
        return names
