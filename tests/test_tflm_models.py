"""TFLite Micro's own example models (examples/models/tflm/, from TFLM's repository): each runs
bit-exact on the native runtime; of the int16x8 SEANet models the CONV_2D and ADD ones too, the others are
refused naming their operator, with the TFLM route offered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MODELS
from tinyml_ptq.errors import UserError
from tinyml_ptq.project import generate
from tinyml_ptq.reference import ReferenceInterpreter
from tinyml_ptq.verify import verify

TFLM_MODELS = SHARED_MODELS.parent / "tflm"
# keyword_scrambled_8bit: an int16 input quantized to int8 by its first operator, int8-state SVDFs,
# an int8 -> int16 softmax and an int32 output.
RUNS = ["hello_world_int8", "keyword_scrambled_8bit", "micro_speech_quantized", "person_detect", "simple_add_model",
        "trained_lstm_int8"]


def _random_inputs(model: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    reference = ReferenceInterpreter(model.read_bytes())
    rng = np.random.default_rng(seed)
    return [rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max + 1, size=(count, *t.shape[1:]), dtype=t.dtype)
            for t in reference.inputs]


def test_every_model_is_covered():
    assert sorted(p.stem for p in TFLM_MODELS.glob("*.tflite")) == sorted(RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_tflm_example_runs_bit_exact_natively(name):
    model = TFLM_MODELS / f"{name}.tflite"
    result = verify(model, _random_inputs(model, 6))
    assert result.samples == 6 and result.exact == 1.0, result


@pytest.mark.parametrize("model", sorted((TFLM_MODELS / "seanet").glob("*/*.tflite"))[::4],
                         ids=lambda p: p.stem)
def test_seanet_int16x8_models_run_natively_or_are_refused_pointing_at_tflm(model, tmp_path):
    """CONV_2D and ADD have native 16x8 kernels: exact; the other SEANet operators are refused by name."""
    if model.parent.name in ("conv", "add"):
        result = verify(model, _random_inputs(model, 3))
        assert result.samples == 3 and result.exact == 1.0, result
        return
    with pytest.raises(UserError, match=rf"{model.parent.name.upper()} \(node 0\) has int16 tensor .*the native "
                                        r"runtime has no int16x8 .*--runtime tflm|is int32, not quantized"):
        generate(model, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # the DSP kernel set, and the reference one
def test_keyword_int16_input_runs_bit_exact_under_qemu(board, tmp_path):
    """TFLM's keyword model on the emulated device: the int16 input goes through the device
    protocol, SVDF, the int16 softmax and the int32 output run on the firmware, exact against TFLM."""
    import shutil

    from tinyml_ptq import build, run

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed")
    model = TFLM_MODELS / "keyword_scrambled_8bit.tflite"
    np.save(tmp_path / "features.npy", _random_inputs(model, 4, seed=1)[0])
    project = generate(model, tmp_path / "fw", board=board).project_dir
    build(project)
    result = run(project, str(tmp_path / "features.npy"))
    assert result.samples == 4
    assert result.exact == 1.0, f"outputs differ from TFLM on samples {result.mismatches}"
    assert [op.op for op in result.per_op][:2] == ["QUANTIZE", "SVDF"]
