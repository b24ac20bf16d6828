"""Weights in the board's external memory (`--weights-memory external`): the MPS2 boards' 16 MB
PSRAM holds them, the image loads them there, and the firmware reads them in place, bit-exact
with the TFLM reference; flash keeps only code and small tables. A model whose weights exceed
the 4 MB flash is refused with the option named, and runs with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.run import run
from tinyml_ptq.target.boards import MiB, get_board
from tinyml_ptq.target.build import WEIGHT_SYMBOL, build, read_elf

from conftest import DIGITS_DIR, SHARED_MODELS

pytestmark = pytest.mark.slow

# Where each board's linker.ld maps region EXTERNAL (QEMU hw/arm/mps2.c, mps2-tz.c): the MPS2 PSRAM,
# the MPS3 AN547's DDR4 (its Secure 256 MB window).
PSRAM = {"mps2-an386": 0x21000000, "mps2-an385": 0x21000000, "mps2-an500": 0x60000000, "mps2-an505": 0x80000000,
         "mps3-an547": 0x70000000}


def _needs_arm_tools() -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed (apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi qemu-system-arm)")


def _samples(path: Path, project: Path, count: int) -> Path:
    shape = json.loads((project / "project.json").read_text())["inputs"][0]["shape"]
    np.save(path, np.random.default_rng(3).integers(-128, 128, size=(count, *shape[1:]), dtype=np.int8))
    return path


def _in_psram(elf: Path, board: str) -> dict[str, int]:
    """Sizes of the data symbols the linker placed in the board's external memory."""
    _, symbols = read_elf(elf)
    return {name: size for name, (address, size) in symbols.items()
            if PSRAM[board] <= address < PSRAM[board] + get_board(board).external_bytes}


# The DSP kernels' packed arrays (KWS), and each PSRAM address (mps2-an385 shares an386's).
@pytest.mark.parametrize("board,model", [("mps2-an386", "kws_ref_model_int8"), ("mps2-an500", "ad01_int8"),
                                         ("mps2-an505", "ad01_int8"), ("mps3-an547", "kws_ref_model_int8")])
def test_weights_in_external_memory_run_bit_exact(board, model, tmp_path):
    _needs_arm_tools()
    tflite = SHARED_MODELS / f"{model}.tflite"
    internal = build(generate(tflite, tmp_path / "internal", board=board).project_dir)
    g = generate(tflite, tmp_path / "external", board=board, weights_memory="external")
    assert g.weights_memory == "external"
    assert json.loads((tmp_path / "external" / "project.json").read_text())["weights_memory"] == "external"
    external = build(g.project_dir)

    # The external memory holds the weight tensors and the kernels' packed arrays, nothing else;
    # the internal build puts nothing there.
    moved = _in_psram(Path(external.elf), board)
    assert moved and all(WEIGHT_SYMBOL.match(name) for name in moved) and not _in_psram(Path(internal.elf), board)
    # What left flash is what the external memory holds, up to the arrays' 16-byte alignment;
    # flash keeps the operators' parameter structs.
    assert internal.flash_split["weights"] - external.flash_split["weights"] == sum(moved.values())
    assert sum(moved.values()) <= external.external_bytes < sum(moved.values()) + 16 * len(moved)
    assert internal.flash_bytes - external.flash_bytes == pytest.approx(external.external_bytes, abs=16 * len(moved))
    assert external.external_capacity == get_board(board).external_bytes and internal.external_bytes == 0

    result = run(g.project_dir, str(_samples(tmp_path / "x.npy", Path(g.project_dir), 3)))
    assert result.samples == 3 and result.exact == 1.0


@pytest.mark.parametrize("board", ["host", "stm32f4-disco"])
def test_boards_without_external_memory_refuse_it(board, digits_int8_tflite, tmp_path):
    with pytest.raises(UserError, match=rf"{board} has no external memory for weights; --weights-memory external "
                                        r"is for mps2-an386, mps2-an500, mps2-an385, mps2-an505, mps3-an547"):
        generate(digits_int8_tflite, tmp_path / "p", board=board, weights_memory="external")
    assert not (tmp_path / "p").exists()


def test_cli_refusal_is_one_line(digits_int8_tflite, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tinyml_ptq", "generate", str(digits_int8_tflite),
                           "-o", str(tmp_path / "p"), "--board", "host", "--weights-memory", "external"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: host has no external memory") and proc.stderr.count("\n") == 1


def _dense_over_4mb(tmp_path: Path) -> Path:
    """Two Dense layers with 4.3 M int8 weights: more than the MPS2 boards' 4 MB of code memory."""
    import tensorflow as tf

    from harness import convert_int8

    first = tf.keras.layers.Dense(2048, activation="relu",
                                  kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.05, seed=1))
    second = tf.keras.layers.Dense(1000, kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.05, seed=2))
    path = tmp_path / "dense_4mb_int8.tflite"
    path.write_bytes(convert_int8(lambda x: second(first(x)), [(1100,)], calib_count=8))
    return path


def test_weights_over_the_flash_run_from_external_memory(tmp_path):
    _needs_arm_tools()
    model = _dense_over_4mb(tmp_path)
    board = get_board("mps2-an386")
    assert model.stat().st_size > board.flash_bytes

    inside = generate(model, tmp_path / "inside", board=board.name)
    with pytest.raises(UserError, match=r"model does not fit on mps2-an386: it exceeds flash by \d+ bytes .*; "
                                        r"generate with --weights-memory external to put the weights in "
                                        r"mps2-an386's external memory \(16 MB PSRAM at 0x21000000"):
        build(inside.project_dir)

    outside = generate(model, tmp_path / "outside", board=board.name, weights_memory="external")
    built = build(outside.project_dir)
    assert built.flash_bytes < 1 * MiB < 4 * MiB < built.external_bytes
    result = run(outside.project_dir, str(_samples(tmp_path / "x.npy", Path(outside.project_dir), 2)))
    assert result.samples == 2 and result.exact == 1.0


def test_deploy_refuses_early_and_names_the_option():
    """The cheap check before calibration (a float conversion's size) points at external memory,
    and lets a model through that fits there."""
    import tensorflow as tf

    from tinyml_ptq.pipeline.deploy import _refuse_early

    board = get_board("mps2-an386")
    dense = tf.keras.Sequential([tf.keras.Input((1100,)), tf.keras.layers.Dense(1000)])  # 4.4 MB of float32
    converter = tf.lite.TFLiteConverter.from_keras_model(dense)
    small = converter.convert()
    big = small + bytes(16 * MiB)  # stands in for a model four times larger, as far as the size check goes
    with pytest.raises(UserError, match=r"exceed mps2-an386's 4,194,304 B of flash \(seen before calibrating\); "
                                        r"deploy with --weights-memory external"):
        _refuse_early(big, "native", board)
    _refuse_early(big, "native", board, "external")
    with pytest.raises(UserError, match=r"exceed mps2-an386's 16,777,216 B of external memory"):
        _refuse_early(big + bytes(64 * MiB), "native", board, "external")


def test_tflm_route_reads_the_model_from_external_memory(tflm_dir, digits_int8_tflite, tmp_path):
    _needs_arm_tools()
    project = generate(digits_int8_tflite, tmp_path / "tflm", board="mps2-an386", runtime="tflm",
                       kernels="reference", weights_memory="external").project_dir
    built = build(project, tflm_dir=tflm_dir)
    _, symbols = read_elf(Path(built.elf))
    (address, size), = [place for name, place in symbols.items() if name.endswith("_model_data")]
    assert PSRAM["mps2-an386"] <= address and size == digits_int8_tflite.stat().st_size <= built.external_bytes
    assert built.flash_split["weights"] == 0
    result = run(project, str(DIGITS_DIR / "eval.npz"), limit=20)
    assert result.samples == 20 and result.exact == 1.0
