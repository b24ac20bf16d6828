"""TFLite Micro's own example models (examples/models/tflm/, from TFLM's repository), the int16x8
SEANet operator models among them: each runs bit-exact on the native runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.pipeline.verify import verify

from conftest import SHARED_MODELS
from harness import full_range_inputs

TFLM_MODELS = SHARED_MODELS.parent / "tflm"
# keyword_scrambled_8bit: an int16 input quantized to int8 by its first operator, int8-state SVDFs,
# an int8 -> int16 softmax and an int32 output.
RUNS = ["hello_world_int8", "keyword_scrambled_8bit", "micro_speech_quantized", "person_detect", "simple_add_model",
        "trained_lstm_int8"]


def test_every_model_is_covered():
    assert sorted(p.stem for p in TFLM_MODELS.glob("*.tflite")) == sorted(RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_tflm_example_runs_bit_exact_natively(name):
    model = TFLM_MODELS / f"{name}.tflite"
    result = verify(model, full_range_inputs(model, 6))
    assert result.samples == 6 and result.exact == 1.0, result


SEANET_KINDS = sorted(p for p in (TFLM_MODELS / "seanet").iterdir() if p.is_dir())


def test_seanet_has_every_16x8_operator_kind():
    assert [k.name for k in SEANET_KINDS] == ["add", "conv", "leaky_relu", "pad", "quantize", "strided_slice", "sub",
                                            "transpose_conv"]


@pytest.mark.parametrize("model", [m for kind in SEANET_KINDS for m in sorted(kind.glob("*.tflite"))],
                         ids=lambda p: p.stem)
def test_seanet_int16x8_model_runs_bit_exact_natively(model):
    """TFLM's 16x8 SEANet operator models, every one: exact on the native 16x8 kernels (random
    full-range inputs; TRANSPOSE_CONV's run-time output-shape input is ignored by TFLM and by us)."""
    result = verify(model, full_range_inputs(model, 3))
    assert result.samples == 3 and result.exact == 1.0, result


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])  # the DSP kernel set, and the scalar one
def test_keyword_int16_input_runs_bit_exact_under_qemu(board, tmp_path):
    """TFLM's keyword model on the emulated device: the int16 input goes through the device
    protocol, SVDF, the int16 softmax and the int32 output run on the firmware, exact against TFLM."""
    import shutil

    from tinyml_ptq import build, run

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed")
    model = TFLM_MODELS / "keyword_scrambled_8bit.tflite"
    np.save(tmp_path / "features.npy", full_range_inputs(model, 4, seed=1)[0])
    project = generate(model, tmp_path / "fw", board=board).project_dir
    build(project)
    result = run(project, str(tmp_path / "features.npy"))
    assert result.samples == 4
    assert result.exact == 1.0, f"outputs differ from TFLM on samples {result.mismatches}"
    assert [op.op for op in result.per_op][:2] == ["QUANTIZE", "SVDF"]
