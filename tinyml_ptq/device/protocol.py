"""Host side of the tinyml-ptq device protocol (docs/protocol.md).

Every message, in both directions, is one frame (integers little-endian):

    A5 | kind u8 | seq u8 | status u8 | length u32 | payload | CRC-32 u32

The CRC (IEEE 802.3, as zlib.crc32) covers kind .. payload. `DeviceClient`
sends one request at a time and accepts only a reply whose CRC is valid and
whose kind and seq match the request. Corrupted, truncated, stale or missing
replies, and the device's error statuses caused by corruption, make it
resynchronise the line and send the request again (same payload, new seq) a
bounded number of times; it never returns data from a frame that failed its
CRC. A FAULT frame from the device raises `DeviceFault` with its registers.
"""

from __future__ import annotations

import enum
import re
import struct
import time
import zlib
from dataclasses import dataclass, field

from ..compiler.ir import TENSOR_TYPE_CODES
from ..core.errors import UserError

SYNC = 0xA5
GARBAGE_KEPT = 512  # bytes of non-frame traffic kept for error messages
PROTOCOL_VERSION = 2
HEADER_SIZE = 8  # SYNC, kind, seq, status, u32 length
CRC_SIZE = 4
# Largest payload accepted from a device before INFO has told us its sizes.
DEFAULT_MAX_REPLY = 1 << 16


class Cmd(enum.IntEnum):
    INFO = 0x01
    LOAD_INPUT = 0x02
    INVOKE = 0x03
    PROFILE = 0x04
    OP_NAMES = 0x05
    FAULT = 0x7F


class Status(enum.IntEnum):
    OK = 0
    BAD_CRC = 1
    BAD_LENGTH = 2
    UNKNOWN_COMMAND = 3
    BAD_OFFSET = 4
    BAD_SYNC = 5
    FAULT = 0x7F


TICK_UNITS = {0: "instructions", 1: "cycles", 2: "ns"}
FAULT_REGISTERS = ("pc", "lr", "xpsr", "cfsr", "hfsr", "mmfar", "bfar")
# Error replies the device sends when a request arrived damaged: worth a retry.
_TRANSIENT = {Status.BAD_CRC, Status.BAD_LENGTH, Status.BAD_SYNC}


def crc32(data: bytes | bytearray | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(kind: int, seq: int, payload: bytes = b"", status: int = 0) -> bytes:
    body = struct.pack("<BBBI", kind & 0xFF, seq & 0xFF, status & 0xFF, len(payload)) + bytes(payload)
    return bytes([SYNC]) + body + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    kind: int
    seq: int
    status: int
    payload: bytes


class FrameDecoder:
    """Incremental frame parser over a byte stream that may drop, corrupt or insert bytes.

    `feed()` bytes as they arrive; `next_frame()` returns the next frame whose
    CRC checks out, or None if more bytes are needed. Bytes before a SYNC are
    skipped; a candidate frame with an impossible length or a bad CRC costs one
    byte (its SYNC) and the scan goes on from the next byte, so the decoder
    finds its way back into step after any damage.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_REPLY):
        self.max_payload = max_payload
        self._buf = bytearray()
        self.skipped = 0  # garbage bytes between frames
        self.corrupt = 0  # candidate frames rejected (bad length or CRC)
        self._garbage = bytearray()  # the latest bytes that were not frames (a device's own text)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def discard(self, data: bytes) -> None:
        """Bytes dropped without decoding (a resync's drain): kept only as possible device text."""
        self._note_garbage(data)

    def _note_garbage(self, data: bytes | bytearray) -> None:
        self._garbage += data
        del self._garbage[:-GARBAGE_KEPT]

    def device_text(self) -> str:
        """The last line of text among the bytes that were not frames, or ''.

        A firmware that cannot start the protocol (a TFLM arena too small, a board set-up
        failure) says why in plain text on the same line; errors quote it.
        """
        text = self._garbage.decode("ascii", errors="replace")
        lines = [re.sub(r"[^ -~]+", " ", line).strip() for line in re.split(r"[\r\n]+", text)]
        lines = [line for line in lines if len(line) >= 8 and sum(c.isalpha() for c in line) >= len(line) // 2]
        return lines[-1][-200:] if lines else ""

    def clear(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame not yet complete."""
        return len(self._buf)

    def next_frame(self, max_payload: int | None = None) -> Frame | None:
        limit = self.max_payload if max_payload is None else max_payload
        buf = self._buf
        while True:
            start = buf.find(SYNC)
            if start < 0:
                self.skipped += len(buf)
                self._note_garbage(buf)
                buf.clear()
                return None
            if start:
                self.skipped += start
                self._note_garbage(buf[:start])
                del buf[:start]
            if len(buf) < HEADER_SIZE:
                return None
            kind, seq, status, length = struct.unpack_from("<BBBI", buf, 1)
            if length > limit:
                self.corrupt += 1
                del buf[:1]
                continue
            end = HEADER_SIZE + length
            if len(buf) < end + CRC_SIZE:
                return None
            (crc,) = struct.unpack_from("<I", buf, end)
            if crc != crc32(memoryview(buf)[1:end]):
                self.corrupt += 1
                del buf[:1]
                continue
            frame = Frame(kind, seq, status, bytes(buf[HEADER_SIZE:end]))
            del buf[: end + CRC_SIZE]
            return frame


# ----------------------------------------------------------------------------- errors


class DeviceError(UserError):
    """The device (or the line to it) did not do what the protocol says."""


class DeviceTimeout(DeviceError):
    pass


class DeviceFault(DeviceError):
    """The device's HardFault handler sent a FAULT frame; the device has stopped."""

    def __init__(self, registers: dict[str, int], sample: int | None = None):
        self.registers = registers
        self.sample = sample
        super().__init__(self._message())

    def _message(self) -> str:
        regs = " ".join(f"{k}=0x{v:08x}" for k, v in self.registers.items())
        where = f" on sample {self.sample}" if self.sample is not None else ""
        hint = describe_fault(self.registers)
        return f"device faulted{where} (HardFault{': ' + hint if hint else ''}): {regs}"

    def at_sample(self, index: int) -> "DeviceFault":
        return DeviceFault(self.registers, index)


def describe_fault(regs: dict[str, int]) -> str:
    """The CFSR/HFSR bits that matter, in words (Armv7-M/Armv8-M)."""
    cfsr, hfsr = regs.get("cfsr", 0), regs.get("hfsr", 0)
    words = []
    bits = {
        0: "instruction access violation", 1: "data access violation", 3: "MemManage on exception return",
        4: "MemManage on exception entry", 8: "instruction bus error", 9: "precise data bus error",
        10: "imprecise data bus error", 11: "bus error on exception return", 12: "bus error on exception entry",
        16: "undefined instruction", 17: "invalid state (Thumb bit)", 18: "invalid exception return",
        19: "no coprocessor (FPU disabled?)", 24: "unaligned access", 25: "divide by zero",
    }
    for bit, text in bits.items():
        if cfsr & (1 << bit):
            words.append(text)
    if cfsr & (1 << 15):
        words.append(f"at address 0x{regs.get('bfar', 0):08x}")
    elif cfsr & (1 << 7):
        words.append(f"at address 0x{regs.get('mmfar', 0):08x}")
    if hfsr & (1 << 1):
        words.append("vector table read fault")
    return ", ".join(words)


# ----------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class TensorSpec:
    dtype: str  # numpy dtype name: "int8", "int16", "float32", ...
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    size: int  # bytes


@dataclass(frozen=True)
class DeviceInfo:
    protocol_version: int
    max_payload: int
    arena_bytes: int
    clock_hz: int
    num_ops: int
    tick_unit: int
    model_name: str
    board_name: str
    model_digest: int  # CRC-32 of the .tflite the firmware was generated from
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def tick_unit_name(self) -> str:
        return TICK_UNITS.get(self.tick_unit, f"unit{self.tick_unit}")

    @property
    def input_size(self) -> int:
        """Bytes of one sample: every input, end to end in index order (LOAD_INPUT's address space)."""
        return sum(t.size for t in self.inputs)

    @property
    def output_size(self) -> int:
        """Bytes of INVOKE's outputs: every output, end to end in index order."""
        return sum(t.size for t in self.outputs)


@dataclass(frozen=True)
class InvokeResult:
    ticks: int
    output: bytes


class _Reader:
    def __init__(self, payload: bytes, what: str):
        self.data, self.pos, self.what = payload, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _BadReply(f"{self.what} reply is too short")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def f32(self) -> float:
        return struct.unpack("<f", self.take(4))[0]

    def string(self) -> str:
        return self.take(self.u8()).decode("utf-8", errors="replace")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise _BadReply(f"{self.what} reply has {len(self.data) - self.pos} unexpected trailing bytes")


def parse_info(payload: bytes) -> DeviceInfo:
    r = _Reader(payload, "INFO")
    version = r.u32()
    if version != PROTOCOL_VERSION:  # the rest of the reply is laid out differently: read no further
        raise DeviceError(f"device speaks protocol version {version}; this tinyml-ptq speaks version "
                          f"{PROTOCOL_VERSION}; regenerate and rebuild the firmware")
    max_payload, arena, clock, num_ops = (r.u32() for _ in range(4))
    tick_unit = r.u8()
    model_name, board_name = r.string(), r.string()
    digest = r.u32()
    type_names = {code: name for name, code in TENSOR_TYPE_CODES.items()}

    def tensor() -> TensorSpec:
        code, rank = r.u8(), r.u8()
        if code not in type_names:
            raise _BadReply(f"INFO reply gives a tensor of unknown type {code}")
        if rank > 8:
            raise _BadReply(f"INFO reply gives a tensor of rank {rank}")
        shape = tuple(r.u32() for _ in range(rank))
        return TensorSpec(type_names[code], shape, r.f32(), r.i32(), r.u32())

    def tensors() -> tuple[TensorSpec, ...]:
        count = r.u8()
        if count == 0:
            raise _BadReply("INFO reply gives a model without inputs or outputs")
        return tuple(tensor() for _ in range(count))

    inputs = tensors()
    outputs = tensors()
    r.end()
    return DeviceInfo(version, max_payload, arena, clock, num_ops, tick_unit, model_name, board_name, digest,
                      inputs, outputs)


def parse_fault(payload: bytes) -> dict[str, int]:
    values = struct.unpack_from(f"<{len(payload) // 4}I", payload)
    return {name: values[i] if i < len(values) else 0 for i, name in enumerate(FAULT_REGISTERS)}


# ----------------------------------------------------------------------------- client


class _Retry(Exception):
    """One attempt failed in a way a retry can fix."""

    def __init__(self, reason: str, silent: bool = False, timed_out: bool = False):
        super().__init__(reason)
        self.silent = silent  # nothing at all came back
        self.timed_out = timed_out  # the attempt's wait ran out


class _BadReply(Exception):
    pass


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    corrupt_frames: int = 0
    stale_frames: int = 0
    problems: list[str] = field(default_factory=list)  # last few retry reasons


class DeviceClient:
    """Talks the device protocol over a byte-stream transport (see transport.py).

    timeout: seconds to wait for a reply to INFO, LOAD_INPUT, PROFILE, OP_NAMES;
    invoke_timeout: for INVOKE. Both are upper bounds: once a command has been
    answered, an attempt is given up after 4x its typical (median of the recent)
    answer time plus 0.2 s, so a lost request or reply is retried promptly; an attempt
    cut short that way counts as no failure, and the retry waits the full timeout, so a
    device that merely got slower is never declared lost before `timeout`.
    retries: how many times a request is sent again after a damaged, stale or
    error reply; a device that stays silent is instead given
    (silent_retries + 1) x timeout seconds in all before DeviceTimeout.
    quiet: once damage has been seen on the line, this many seconds without a
    byte means the reply is lost; the request is retried at once.
    """

    def __init__(self, transport, timeout: float = 2.0, invoke_timeout: float = 60.0, retries: int = 10,
                 silent_retries: int = 2, quiet: float = 0.25):
        self.transport = transport
        self.timeout = timeout
        self.invoke_timeout = invoke_timeout
        self.retries = retries
        self.silent_retries = silent_retries
        self.quiet = quiet
        self.decoder = FrameDecoder()
        self.stats = ClientStats()
        self.device_info: DeviceInfo | None = None
        self._seq = 0
        self._answer_times: dict[int, list[float]] = {}  # command -> recent accepted reply times, s
        self._resync_bytes = 1024 + HEADER_SIZE + CRC_SIZE

    # -- commands

    def info(self) -> DeviceInfo:
        info = self._request(Cmd.INFO, b"", max_reply=DEFAULT_MAX_REPLY, parse=parse_info)
        self.device_info = info
        self._resync_bytes = info.max_payload + HEADER_SIZE + CRC_SIZE
        return info

    def load_input(self, data: bytes, offset: int = 0) -> None:
        """Writes `data` at `offset` of the model's inputs (all of them end to end, in index
        order), in chunks the device accepts."""
        info = self._need_info()
        chunk = max(1, info.max_payload - 4)
        data = bytes(data)
        for start in range(0, len(data), chunk) if data else [0]:
            part = data[start:start + chunk]
            payload = struct.pack("<I", offset + start) + part
            self._request(Cmd.LOAD_INPUT, payload, expect=0)

    def invoke(self, input_bytes: bytes | None = None) -> InvokeResult:
        """Runs the model once. With `input_bytes`, loads them first, and again before every
        retry of INVOKE: the model may reuse its input's memory, so a second INVOKE on the
        same input could give a different output."""
        info = self._need_info()
        if input_bytes is not None and len(input_bytes) != info.input_size:
            raise DeviceError(f"input is {len(input_bytes)} bytes; the device's model inputs are "
                              f"{info.input_size} bytes")
        expect = 4 + info.output_size

        def parse(payload: bytes) -> InvokeResult:
            return InvokeResult(struct.unpack_from("<I", payload)[0], payload[4:])

        before = (lambda: self.load_input(input_bytes)) if input_bytes is not None else None
        return self._request(Cmd.INVOKE, b"", expect=expect, parse=parse, before_each=before)

    def profile(self) -> list[int]:
        info = self._need_info()

        def parse(payload: bytes) -> list[int]:
            r = _Reader(payload, "PROFILE")
            n = r.u32()
            if n != info.num_ops:
                raise _BadReply(f"PROFILE reply has {n} ops, INFO said {info.num_ops}")
            ticks = [r.u32() for _ in range(n)]
            r.end()
            return ticks

        return self._request(Cmd.PROFILE, b"", expect=4 + 4 * info.num_ops, parse=parse)

    def op_names(self) -> list[str]:
        info = self._need_info()

        def parse(payload: bytes) -> list[str]:
            r = _Reader(payload, "OP_NAMES")
            names = [r.string() for _ in range(info.num_ops)]
            r.end()
            return names

        return self._request(Cmd.OP_NAMES, b"", max_reply=256 * max(info.num_ops, 1), parse=parse)

    # -- machinery

    def _need_info(self) -> DeviceInfo:
        return self.device_info if self.device_info is not None else self.info()

    def _attempt_timeout(self, kind: int) -> float:
        limit = self.invoke_timeout if kind == Cmd.INVOKE else self.timeout
        times = self._answer_times.get(kind)
        if not times:
            return limit
        typical = sorted(times)[len(times) // 2]
        return min(limit, 4 * typical + 0.2)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def resync(self) -> None:
        """Bring the device back to scanning for SYNC: zeros complete any frame it is
        part-way through (which it then rejects); the rest it skips as garbage. Whatever
        is already buffered here is stale and dropped."""
        self.transport.write(bytes(self._resync_bytes))
        self.decoder.clear()
        while data := self.transport.read(0.0):
            self.decoder.discard(data)

    def _request(self, kind: Cmd, payload: bytes, expect: int | None = None, max_reply: int | None = None,
                 parse=None, before_each=None):
        limit = expect if expect is not None else (max_reply or DEFAULT_MAX_REPLY)
        limit = max(limit, 4 * len(FAULT_REGISTERS))
        full_timeout = self.invoke_timeout if kind == Cmd.INVOKE else self.timeout
        problems: list[str] = []
        failures = 0
        silent_since: float | None = None
        patient = False  # once an adaptive wait proved too short, wait the full timeout
        self.stats.requests += 1
        first = True
        while True:
            if not first:
                self.stats.retries += 1
                self.resync()
            first = False
            try:
                if before_each is not None:
                    before_each()
                seq = self._next_seq()
                timeout = full_timeout if patient else self._attempt_timeout(kind)
                sent = time.monotonic()
                self.transport.write(encode_frame(kind, seq, payload))
                frame = self._await(kind, seq, limit, timeout)
                if frame.status != Status.OK:
                    status = _status_name(frame.status)
                    if frame.status in _TRANSIENT:
                        raise _Retry(f"device answered {status}")
                    raise DeviceError(f"device refused {kind.name} ({len(payload)}-byte payload): {status}")
                if expect is not None and len(frame.payload) != expect:
                    raise _Retry(f"{kind.name} reply has {len(frame.payload)} bytes, expected {expect}")
                try:
                    result = parse(frame.payload) if parse else frame.payload
                except (_BadReply, struct.error) as exc:
                    raise _Retry(str(exc)) from None
                elapsed = time.monotonic() - sent
                self._answer_times[kind] = (self._answer_times.get(kind, []) + [elapsed])[-15:]
                return result
            except _Retry as exc:
                problems.append(str(exc))
                self.stats.problems = (self.stats.problems + [f"{kind.name}: {exc}"])[-20:]
                now = time.monotonic()
                if exc.timed_out and timeout < full_timeout:
                    # The device answers more slowly than it did (a loaded machine, a slower
                    # sample): that is no failure; the next attempt waits the whole timeout.
                    patient = True
                    continue
                if exc.silent:
                    silent_since = sent if silent_since is None else silent_since
                    if now - silent_since >= (self.silent_retries + 1) * full_timeout:
                        raise DeviceTimeout(
                            f"no reply to {kind.name} for {now - silent_since:.1f} s: "
                            + self._device_said("the device is not running a tinyml-ptq firmware, is hung, "
                                                "or the line is down")) from None
                    continue
                silent_since = None
                failures += 1
                if failures > self.retries:
                    raise DeviceError(f"no valid reply to {kind.name} after {failures} attempts: " + self._device_said(
                        f"line too noisy? last problems: {'; '.join(problems[-3:])}")) from None

    def _device_said(self, otherwise: str) -> str:
        text = self.decoder.device_text()
        return f"the device printed '{text}'" if text else otherwise

    def _await(self, kind: int, seq: int, limit: int, timeout: float) -> Frame:
        deadline = time.monotonic() + timeout
        corrupt_at_start = self.decoder.corrupt
        got_bytes = False
        suspicious = False  # an error reply under another seq: perhaps ours, its seq damaged
        last_byte = time.monotonic()
        while True:
            frame = self.decoder.next_frame(limit)
            if frame is not None:
                if frame.kind == Cmd.FAULT:
                    raise DeviceFault(parse_fault(frame.payload))
                if frame.seq == seq and frame.kind == kind:
                    return frame
                self.stats.stale_frames += 1
                suspicious = suspicious or frame.status in _TRANSIENT
                continue
            now = time.monotonic()
            # A frame that is only incomplete may be slow, not lost: it has until the deadline.
            damaged = suspicious or self.decoder.corrupt > corrupt_at_start
            if damaged and now - last_byte >= self.quiet:
                self.stats.corrupt_frames += self.decoder.corrupt - corrupt_at_start
                raise _Retry("reply damaged, incomplete or lost")
            if now >= deadline:
                raise _Retry(f"no reply within {timeout:.2f} s", silent=not got_bytes, timed_out=True)
            wait = deadline - now
            if damaged:
                wait = min(wait, self.quiet - (now - last_byte))
            data = self.transport.read(max(wait, 0.0))
            if data:
                got_bytes = True
                last_byte = time.monotonic()
                self.decoder.feed(data)


def _status_name(status: int) -> str:
    try:
        return Status(status).name
    except ValueError:
        return f"status {status}"
