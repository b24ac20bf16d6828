"""Firmware projects: generate, cross-build for every board, boot in QEMU, serve the protocol.

Builds are made once per (model, board) for the whole session. QEMU boards are
booted with -icount shift=0 by the package's emulator and driven over their UART
on stdio: by its DeviceClient, and by `RawLine` (below) for the malformed frames
the client never sends.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.core.resources import FIRMWARE_DIR, ROOT
from tinyml_ptq.device.emulator import Emulator
from tinyml_ptq.device.protocol import (Cmd, DeviceClient, DeviceInfo, Frame, FrameDecoder, Status, encode_frame,
                                        parse_fault, parse_info)
from tinyml_ptq.target.boards import BOARDS, get_board
from tinyml_ptq.target.build import build

from conftest import AD01_MODEL

AD01 = AD01_MODEL
QEMU_BOARDS = [b.name for b in BOARDS.values() if b.qemu_machine]
ARM_BOARDS = [b.name for b in BOARDS.values() if not b.is_host]
FAULT_ADDRESS = 0xF0000000

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    import tensorflow as tf

    from harness import convert_int8

    folder = tmp_path_factory.mktemp("models")
    hidden = tf.keras.layers.Dense(16, activation="relu")
    out = tf.keras.layers.Dense(5)
    hidden.build((1, 12))
    out.build((1, 16))
    dense = folder / "dense_small.tflite"
    dense.write_bytes(convert_int8(lambda x: out(hidden(x)), [(12,)]))
    # Two inputs of different sizes, two outputs: every input and output goes over the protocol.
    joint = tf.keras.layers.Dense(7)
    joint.build((1, 9))
    two_io = folder / "two_io.tflite"
    two_io.write_bytes(convert_int8(lambda a, b: (joint(tf.concat([a, b], -1)), tf.nn.relu(a) * 2.0),
                                    [(6,), (3,)]))
    return {"dense": dense, "ad01": AD01, "two_io": two_io}


class Builds:
    """(model, board, variant) -> (project dir, BuildResult), built on first use."""

    def __init__(self, root: Path, models: dict[str, Path]):
        self.root = root
        self.models = models
        self.cache: dict[tuple[str, str, str], tuple[Path, object]] = {}

    def get(self, model: str, board: str, fault_test: bool = False):
        key = (model, board, "fault" if fault_test else "normal")
        if key not in self.cache:
            project = self.root / f"{model}-{board}"
            if not (project / "project.json").exists():
                generate(self.models[model], project, board=board)
            args = ["FAULT_TEST=1", "BUILD=build-fault"] if fault_test else None
            self.cache[key] = (project, build(project, make_args=args))
        return self.cache[key]


@pytest.fixture(scope="session")
def builds(tmp_path_factory, models) -> Builds:
    return Builds(tmp_path_factory.mktemp("fw"), models)


class RawLine:
    """Frames to and from a running firmware, byte for byte: for the malformed requests
    `DeviceClient` never sends, and for replies it would retry or turn into exceptions."""

    def __init__(self, transport):
        self.transport = transport
        self.decoder = FrameDecoder()
        self.seq = 0

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def read_frame(self, timeout: float = 30.0) -> Frame:
        """The next frame; the emulated line is clean, so none may fail its CRC."""
        deadline = time.monotonic() + timeout
        while (reply := self.decoder.next_frame()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete frame within {timeout} s")
            self.decoder.feed(self.transport.read(left))
        assert self.decoder.corrupt == 0, "the device sent a frame with a bad length or CRC"
        return reply

    def request(self, kind: int, payload: bytes = b"") -> Frame:
        self.seq = (self.seq + 1) & 0xFF
        self.write(encode_frame(kind, self.seq, payload))
        reply = self.read_frame()
        assert (reply.kind, reply.seq) == (kind, self.seq), f"stale or mismatched reply {reply}"
        return reply

    def info(self) -> DeviceInfo:
        reply = self.request(Cmd.INFO)
        assert reply.status == Status.OK, reply
        return parse_info(reply.payload)


@contextmanager
def running(board: str, elf: str | Path):
    """The firmware started the way `run` starts it (QEMU, or the host executable), stopped on exit."""
    with Emulator(elf, get_board(board).qemu_machine) as emulator:
        yield emulator.transport()


def strict_client(transport) -> DeviceClient:
    """A DeviceClient that fails on the first damaged or refused reply instead of retrying: the
    emulated line is clean, so any such reply is the firmware's fault. A slow reply may still be
    asked for again within the same 30 s (60 s for INVOKE) a device gets to answer."""
    return DeviceClient(transport, timeout=30.0, invoke_timeout=60.0, retries=0, silent_retries=0, quiet=5.0)


def _reference(model: Path):
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    return ReferenceInterpreter(model.read_bytes())


# --- registry and project layout -------------------------------------------------------------


def test_board_registry_matches_linker_scripts():
    for board in BOARDS.values():
        if board.is_host:
            continue
        script = (FIRMWARE_DIR / "boards" / board.name / "linker.ld").read_text()
        lengths = {}
        for region, length in re.findall(r"(FLASH|RAM)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*\w+,\s*LENGTH\s*=\s*(\w+)", script):
            number = int(re.match(r"\d+", length).group())
            lengths[region] = number * {"K": 1024, "M": 1024 * 1024}.get(length[-1], 1)
        assert lengths == {"FLASH": board.flash_bytes, "RAM": board.ram_bytes}, board.name
        stack = re.search(r"__stack_size__\s*=\s*(\d+)K", script)
        assert int(stack.group(1)) * 1024 == board.stack_bytes, board.name


def test_unknown_board_and_non_project_folder_are_user_errors(models, tmp_path):
    with pytest.raises(UserError, match="unknown board 'nope'"):
        generate(models["dense"], tmp_path / "p", board="nope")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a tinyml-ptq firmware project"):
        generate(models["dense"], tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(UserError, match="not a tinyml-ptq firmware project"):
        build(tmp_path / "mine")


def test_float_model_is_refused(tmp_path):
    import tensorflow as tf

    dense = tf.keras.layers.Dense(3)
    dense.build((1, 4))
    fn = tf.function(lambda x: dense(x), input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    path = tmp_path / "float.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(UserError, match="int8"):
        generate(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- cross builds ----------------------------------------------------------------------------


def _berkeley_size(elf: str, host: bool) -> tuple[int, int, int]:
    tool = "size" if host else "arm-none-eabi-size"
    out = subprocess.run([tool, elf], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text, data, bss


@needs_arm
@pytest.mark.parametrize("board", list(BOARDS))
@pytest.mark.parametrize("model", ["dense", "ad01"])
def test_builds_for_every_board(builds, model, board):
    project, result = builds.get(model, board)
    info = get_board(board)
    makefile = (project / "Makefile").read_text()
    assert "-Wall -Wextra -Werror" in makefile
    for flag in info.cpu_flags:
        assert flag in makefile
    assert Path(result.elf).is_file()
    if not info.is_host:
        assert Path(result.bin).stat().st_size > 0 and Path(result.hex).stat().st_size > 0
        assert result.flash_bytes <= info.flash_bytes and result.ram_bytes <= info.ram_bytes
        assert result.stack_bytes == info.stack_bytes
    # Our ELF reading agrees with binutils.
    text, data, bss = _berkeley_size(result.elf, info.is_host)
    assert result.flash_bytes == text + data
    assert result.ram_bytes == data + bss
    nm = "nm" if info.is_host else "arm-none-eabi-nm"
    symbols = subprocess.run([nm, "-S", result.elf], capture_output=True, text=True, check=True).stdout
    arena_line = next(line for line in symbols.splitlines() if line.endswith(" model_arena"))
    assert int(arena_line.split()[1], 16) == result.arena_bytes
    meta = json.loads((project / "project.json").read_text())
    assert result.arena_bytes == max(meta["arena_bytes"], 16)


@needs_arm
def test_build_json_report(builds, tmp_path):
    project, _ = builds.get("dense", "mps2-an386")
    report = tmp_path / "build.json"
    result = build(project, json_out=report)
    data = json.loads(report.read_text())
    assert data["flash_bytes"] == result.flash_bytes and data["ram_bytes"] == result.ram_bytes
    assert data["board"] == "mps2-an386" and data["ram_capacity"] == 4 * 1024 * 1024


@needs_arm
def test_project_is_self_contained(builds, tmp_path):
    project, _ = builds.get("dense", "mps2-an505")
    copy = tmp_path / "elsewhere" / "fw"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build", "build-*"))
    for path in copy.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert str(ROOT) not in text, f"{path} refers back into the toolkit"
            assert "#include \"../" not in text
    proc = subprocess.run(["make", "-C", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning:" not in proc.stdout + proc.stderr
    for suffix in ("elf", "bin", "hex"):
        assert (copy / "build" / f"firmware.{suffix}").is_file()


@needs_arm
def test_model_too_big_for_the_board_says_by_how_much(tmp_path, capsys):
    import tensorflow as tf

    from tinyml_ptq.cli import main

    from harness import convert_int8

    n = 700_000  # the input alone needs more than the NUCLEO-L4R5ZI's 640 KB of RAM
    dense = tf.keras.layers.Dense(1)
    dense.build((1, n))
    model = tmp_path / "wide.tflite"
    model.write_bytes(convert_int8(lambda x: dense(x), [(n,)], calib_count=4))
    project = tmp_path / "wide"
    assert main(["generate", str(model), "-o", str(project), "--board", "nucleo-l4r5zi"]) == 0
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and re.match(r"warning: model does not fit on nucleo-l4r5zi: its weights \(700,\d+ B\), "
                                           r"arena \(.*\) alone exceed RAM by \d+ bytes, before any code", warnings[0])
    assert generate(model, tmp_path / "fits", board="mps2-an386").does_not_fit is None
    with pytest.raises(UserError, match=r"does not fit on nucleo-l4r5zi: it exceeds RAM by (\d+) bytes") as exc:
        build(project)
    over = int(re.search(r"RAM by (\d+) bytes", str(exc.value)).group(1))
    arena = json.loads((project / "project.json").read_text())["arena_bytes"]
    assert arena - 640 * 1024 < over < arena - 640 * 1024 + 32 * 1024
    assert main(["build", str(project)]) == 2


def test_cli_boards_lists_every_board(capsys):
    from tinyml_ptq.cli import main

    assert main(["boards", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in listed] == list(BOARDS)
    assert all(b["verified"] for b in listed)
    assert main(["boards"]) == 0
    assert "not yet tried on hardware" in capsys.readouterr().out


# --- running the firmware --------------------------------------------------------------------


def _check_serves(builds, model_name: str, board: str, samples: int = 3):
    project, result = builds.get(model_name, board)
    model = builds.models[model_name]
    ref = _reference(model)
    meta = json.loads((project / "project.json").read_text())
    rng = np.random.default_rng(1)
    with running(board, result.elf) as transport:
        dev = strict_client(transport)
        info = dev.info()
        assert info.protocol_version == 2
        assert info.board_name == board and info.model_name == meta["model_name"]
        assert info.model_digest == zlib.crc32(model.read_bytes())
        assert info.num_ops == len(meta["op_names"]) and info.arena_bytes == result.arena_bytes
        assert info.max_payload == meta["max_payload"]
        board_info = get_board(board)
        assert info.tick_unit == {"instructions": 0, "cycles": 1, "nanoseconds": 2}[board_info.tick_unit]
        assert info.clock_hz == board_info.clock_hz
        for device_side, reference_side in ((info.inputs, ref.inputs), (info.outputs, ref.outputs)):
            assert len(device_side) == len(reference_side)
            for spec, t in zip(device_side, reference_side):
                assert spec.shape == tuple(t.shape) and spec.dtype == t.dtype.name
                assert spec.zero_point == t.zero_point and np.float32(spec.scale) == np.float32(t.scale)
                assert spec.size == t.nbytes
        assert dev.op_names() == meta["op_names"]
        for _ in range(samples):
            x = rng.integers(-128, 128, size=info.input_size, dtype=np.int8)
            dev.load_input(x.tobytes())
            answer = dev.invoke()
            ticks = answer.ticks
            np.testing.assert_array_equal(np.frombuffer(answer.output, dtype=np.int8), ref.invoke_bytes(x))
            per_op = dev.profile()
            assert len(per_op) == info.num_ops
            assert ticks > 0 and all(t > 0 for t in per_op) and sum(per_op) <= ticks
        assert dev.decoder.corrupt == 0
        return ticks, per_op


@pytest.mark.parametrize("model", ["dense", "ad01", "two_io"])
def test_host_board_serves_the_model_bit_exact(builds, model):
    _check_serves(builds, model, "host")


@needs_arm
@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_qemu_board_boots_and_runs_ad01_bit_exact(builds, board):
    ticks, per_op = _check_serves(builds, "ad01", board, samples=2)
    # -icount shift=0: ticks count instructions, in steps of one SysTick period (1e9 / clock_hz
    # instructions; 31.25 on mps3-an547, whose counts are rounded down to whole instructions).
    clock = get_board(board).clock_hz

    def whole_systicks(t: int) -> bool:
        n = (t * clock + 500_000_000) // 1_000_000_000
        return abs(t * clock - n * 1_000_000_000) < clock

    assert whole_systicks(ticks) and all(whole_systicks(t) for t in per_op)


@needs_arm
@needs_qemu
def test_qemu_board_serves_several_inputs_and_outputs(builds):
    _check_serves(builds, "two_io", "mps2-an386", samples=2)


def _protocol_errors(dev: RawLine, stalls: bool) -> None:
    info = dev.info()
    # Corrupted CRC: error reply echoing kind and seq, then the device keeps serving.
    bad = bytearray(encode_frame(Cmd.INFO, 0x41))
    bad[-1] ^= 0xFF
    dev.write(bytes(bad))
    r = dev.read_frame()
    assert (r.kind, r.seq, r.status, r.payload) == (Cmd.INFO, 0x41, Status.BAD_CRC, b"")
    # Corrupted payload byte on a LOAD_INPUT: rejected, not written.
    bad = bytearray(encode_frame(Cmd.LOAD_INPUT, 0x42, struct.pack("<I", 0) + b"\x01\x02"))
    bad[12] ^= 0x10
    dev.write(bytes(bad))
    assert dev.read_frame().status == Status.BAD_CRC
    # Oversized length: BAD_LENGTH right after the header; the payload is skipped as garbage.
    dev.write(encode_frame(Cmd.LOAD_INPUT, 0x43, bytes(info.max_payload + 1)))
    r = dev.read_frame()
    assert (r.kind, r.seq, r.status) == (Cmd.LOAD_INPUT, 0x43, Status.BAD_LENGTH)
    assert dev.info() == info
    # Unknown command.
    assert dev.request(0x33).status == Status.UNKNOWN_COMMAND
    # LOAD_INPUT past the end of the input, and without an offset.
    assert dev.request(Cmd.LOAD_INPUT, struct.pack("<I", info.input_size) + b"\x00").status == Status.BAD_OFFSET
    assert dev.request(Cmd.LOAD_INPUT, struct.pack("<I", 0xFFFFFFFF) + b"\x00").status == Status.BAD_OFFSET
    assert dev.request(Cmd.LOAD_INPUT, b"\x00\x00").status == Status.BAD_LENGTH
    assert dev.request(Cmd.LOAD_INPUT, struct.pack("<I", info.input_size)).status == Status.OK  # empty write at the end
    # Garbage between frames is skipped.
    dev.write(b"\x00\x13\x37garbage")
    assert dev.info() == info
    # Garbage followed by a corrupted frame: BAD_SYNC.
    bad = bytearray(encode_frame(Cmd.INFO, 0x44))
    bad[-2] ^= 0x01
    dev.write(b"\x5a\x5a" + bytes(bad))
    r = dev.read_frame()
    assert (r.seq, r.status) == (0x44, Status.BAD_SYNC)
    if stalls:
        # A sender that stops mid-frame: the device gives up after 200 ms without a byte and
        # resynchronises. (Device time: under QEMU that is seconds of real time, so only the
        # host board checks it.)
        dev.write(encode_frame(Cmd.INFO, 0x45)[:6])
        time.sleep(0.5)
        assert dev.info() == info
    # A stale reply never satisfies a newer request: seq is echoed.
    r = dev.request(Cmd.INFO)
    assert r.seq == dev.seq and r.status == Status.OK


def test_host_board_protocol_errors(builds):
    _, result = builds.get("dense", "host")
    with running("host", result.elf) as transport:
        _protocol_errors(RawLine(transport), stalls=True)


@needs_arm
@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_qemu_board_protocol_errors(builds, board):
    _, result = builds.get("dense", board)
    with running(board, result.elf) as transport:
        _protocol_errors(RawLine(transport), stalls=False)


def _expect_fault(board: str, elf: str) -> dict[str, int]:
    with running(board, elf) as transport:
        dev = RawLine(transport)
        assert dev.info().board_name == board
        dev.seq += 1
        dev.write(encode_frame(Cmd.INVOKE, dev.seq))
        r = dev.read_frame()
        assert (r.kind, r.seq, r.status) == (Cmd.FAULT, 0, Status.FAULT)
        assert len(r.payload) == 28
        return parse_fault(r.payload)


@needs_arm
@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_qemu_fault_handler_sends_fault_frame(builds, board):
    _, result = builds.get("dense", board, fault_test=True)
    regs = _expect_fault(board, result.elf)
    text = next(s for s in result.sections if s.name == ".text")
    assert text.address <= regs["pc"] < text.address + text.size
    assert regs["cfsr"] & 0x8200 == 0x8200  # BusFault: PRECISERR with BFARVALID
    assert regs["hfsr"] & 0x40000000  # escalated (FORCED) to HardFault
    assert regs["bfar"] == FAULT_ADDRESS
    assert regs["xpsr"] & 0x01000000  # Thumb state


def test_host_fault_handler_sends_fault_frame(builds):
    _, result = builds.get("dense", "host", fault_test=True)
    regs = _expect_fault("host", result.elf)
    assert regs["cfsr"] == 11  # SIGSEGV
    assert regs["bfar"] == 16


def test_model_name_is_sanitized_for_info(models, tmp_path):
    project = tmp_path / "named"
    result = generate(models["dense"], project, board="host", name='my "model" */\n#define x')
    assert result.model_name == "my model define x"
    built = build(project)
    with running("host", built.elf) as transport:
        assert strict_client(transport).info().model_name == result.model_name


@needs_arm
def test_optimized_kernels_keep_small_stack_frames_at_O0(tmp_path):
    """-O0 keeps every inlined temporary in a stack slot of its own: a kernel whose frame outgrows
    the boards' 16 KB stack corrupts memory there (the Helium depthwise kernel's reached 24 KB)."""
    runtime = FIRMWARE_DIR / "runtime"
    frames = {}
    for source in sorted(p for d in ("dsp", "helium", "scalar") for p in (runtime / "kernels" / d).glob("*.c")):
        subprocess.run(["arm-none-eabi-gcc", *get_board("mps3-an547").cpu_flags, "-std=c99", "-O0", "-fstack-usage",
                        "-I", str(runtime / "include"), "-c", str(source), "-o", str(tmp_path / "k.o")], check=True)
        for line in (tmp_path / "k.su").read_text().splitlines():
            where, size, _ = line.split("\t")
            frames[f"{source.name}:{where.rsplit(':', 1)[-1]}"] = int(size)
    assert len(frames) > 40 and max(frames.values()) <= 4096, sorted(frames.items(), key=lambda kv: -kv[1])[:3]


@needs_arm
@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"])
def test_every_runtime_kernel_cross_compiles_warning_free(board, tmp_path):
    """All kernels the core can run, not just the ones a test model uses (int32_t is `long` on Arm:
    type slips show here); the Helium kernels on cores with MVE."""
    flags = list(get_board(board).cpu_flags)
    runtime = FIRMWARE_DIR / "runtime"
    sources = sorted((runtime / "kernels").rglob("*.c"))
    helium = [s for s in sources if s.parent.name == "helium"]
    for source in sources if get_board(board).mve else sorted(set(sources) - set(helium)):
        cmd = ["arm-none-eabi-gcc", *flags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
               "-Wdouble-promotion", "-I", str(runtime / "include"), "-c", str(source), "-o", str(tmp_path / "k.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{source.name} for {board}:\n{proc.stderr[-2000:]}"
