"""The Cortex-M0+ (Armv6-M) board, nucleo-g0b1re, under Renode: the native runtime's reference
kernels bit-exact on the digits example and AD01, the FAULT frame of a core without fault status
registers, and the refusal of a model too big for the part.

Renode comes from $RENODE / PATH, or here from ../shared/tools/renode beside the checkout;
without one the emulated tests skip with one line saying how to get it. Renode's Cortex-M0+
executes Thumb-2 instructions and unaligned loads that the real core faults on, so the images
are also checked to hold Armv6-M instructions only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.protocol import DeviceFault
from tinyml_ptq.device.run import run
from tinyml_ptq.target.boards import get_board, resolve_kernels

from conftest import AD01_MODEL, DIGITS_DIR

pytestmark = pytest.mark.slow

BOARD = "nucleo-g0b1re"
# The only 32-bit Thumb instructions Armv6-M has (ARM DDI 0419, A5.3).
ARMV6M_WIDE = {"bl", "mrs", "msr", "dmb", "dsb", "isb", "udf.w"}


@pytest.fixture(scope="session")
def arm_gcc() -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is needed (make apt installs it)")


@pytest.fixture(scope="session")
def m0_projects(tmp_path_factory, arm_gcc, digits_int8_tflite):
    """Built projects for the board, once per session: digits, AD01, digits with FAULT_TEST=2."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.target.build import build

    root = tmp_path_factory.mktemp("m0plus")
    projects = {}
    for name, model, make_args in (("digits", digits_int8_tflite, None), ("ad01", AD01_MODEL, None),
                                   ("fault", digits_int8_tflite, ["FAULT_TEST=2"])):
        generate(model, root / name, board=BOARD)
        build(root / name, make_args=make_args)
        projects[name] = root / name
    return projects


def wide_instructions(elf: Path) -> set[str]:
    """The mnemonics of the 32-bit instructions in the image's code."""
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    return {m.group(1) for m in re.finditer(r"^\s*[0-9a-f]+:\t[0-9a-f]{4} [0-9a-f]{4} \t(\S+)", listing, re.M)}


def test_board_is_a_cortex_m0plus_without_dsp():
    board = get_board(BOARD)
    assert board.cpu == "Cortex-M0+" and "-mcpu=cortex-m0plus" in board.cpu_flags and not board.dsp
    assert (board.flash_bytes, board.ram_bytes) == (512 * 1024, 144 * 1024)
    assert board.emulator == "renode" and board.kernels == "scalar"
    with pytest.raises(UserError, match="has no DSP extension"):
        resolve_kernels(board, "dsp")


def test_images_hold_armv6m_instructions_only(m0_projects):
    for name, project in m0_projects.items():
        elf = project / "build" / "firmware.elf"
        wide = wide_instructions(elf)
        assert "bl" in wide and wide <= ARMV6M_WIDE, (name, wide - ARMV6M_WIDE)
        attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True,
                                    check=True).stdout
        assert "Tag_CPU_arch: v6S-M" in attributes, name


def test_digits_bit_exact(m0_projects, renode):
    result = run(m0_projects["digits"], DIGITS_DIR / "eval.npz", limit=120)
    assert result.board == BOARD and result.samples == 120
    assert result.exact == 1.0 and result.mismatches == []
    assert result.accuracy_device == result.accuracy_reference > 0.9
    assert result.latency_unit == "instructions" and result.emulator == "renode"
    # TIM2 counts virtual time: whole quanta of 320 instructions (5 us at 64 MHz), and no fewer than
    # two (MULS, ADDS) per each of the model's 88 k multiply-accumulates
    assert all(t % 320 == 0 for t in result.latencies) and min(result.latencies) > 2 * 88_000


def test_ad01_bit_exact(m0_projects, renode, tmp_path):
    data = tmp_path / "ad01.npz"
    rng = np.random.default_rng(7)
    np.savez(data, x=rng.normal(-10.0, 8.0, size=(6, 640)).astype(np.float32))
    result = run(m0_projects["ad01"], data)
    assert result.samples == 6 and result.exact == 1.0 and result.mismatches == []
    assert result.flash_bytes > 270_000  # the weights are in the flash


def test_faulting_firmware_sends_the_fault_frame(m0_projects, renode, capsys):
    # FAULT_TEST=2: INVOKE executes `udf #0`. Armv6-M has no CFSR/HFSR/MMFAR/BFAR: the frame carries zeros.
    project = m0_projects["fault"]
    with pytest.raises(DeviceFault) as exc:
        run(project, DIGITS_DIR / "eval.npz", limit=2)
    regs = exc.value.registers
    image = (project / "build" / "firmware.bin").read_bytes()
    offset = regs["pc"] - 0x08000000
    assert image[offset:offset + 2] == b"\x00\xde"  # the stacked pc is the udf
    assert regs["lr"] & 1 and 0x08000000 <= regs["lr"] < 0x08000000 + len(image)
    assert regs["xpsr"] & (1 << 24)  # Thumb state
    assert [regs[k] for k in ("cfsr", "hfsr", "mmfar", "bfar")] == [0, 0, 0, 0]
    assert main(["run", str(project), "--data", str(DIGITS_DIR / "eval.npz"), "--limit", "2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: device faulted on sample 0 (HardFault)")


def test_model_too_big_for_the_part_says_by_how_much(arm_gcc, tmp_path):
    """600 K int8 weights and a 600 KB input: over both the 512 KB of flash and the 144 KB of RAM."""
    import tensorflow as tf

    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.target.build import build

    from harness import convert_int8

    n = 600_000
    dense = tf.keras.layers.Dense(1)
    dense.build((1, n))
    model = tmp_path / "wide.tflite"
    model.write_bytes(convert_int8(lambda x: dense(x), [(n,)], calib_count=4))
    generated = generate(model, tmp_path / "wide", board=BOARD)
    # generate already says so, from the weights, arena and stack alone
    assert re.match(rf"model does not fit on {BOARD}: its weights \([\d,]+ B\), arena .* alone exceed flash by \d+ "
                    r"bytes and RAM by \d+ bytes, before any code; build will refuse it; use a smaller model",
                    generated.does_not_fit), generated.does_not_fit
    with pytest.raises(UserError, match=rf"model does not fit on {BOARD}: it exceeds RAM by \d+ bytes .* and "
                                        r"flash by \d+ bytes .*; use a smaller model") as exc:
        build(generated.project_dir)
    ram_over = int(re.search(r"RAM by (\d+) bytes", str(exc.value)).group(1))
    flash_over = int(re.search(r"flash by (\d+) bytes", str(exc.value)).group(1))
    assert generated.arena_bytes - 144 * 1024 < ram_over < generated.arena_bytes - 144 * 1024 + 32 * 1024
    assert n - 512 * 1024 < flash_over < n - 512 * 1024 + 32 * 1024
