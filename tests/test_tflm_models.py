"""TFLite Micro's own example models (examples/models/tflm/, from TFLM's repository): each runs
bit-exact on the native runtime, or is refused before anything is written with the operator or
type named and the TFLM route offered."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MODELS
from tinyml_ptq.errors import UserError
from tinyml_ptq.project import generate
from tinyml_ptq.reference import ReferenceInterpreter
from tinyml_ptq.verify import verify

TFLM_MODELS = SHARED_MODELS.parent / "tflm"
RUNS = ["hello_world_int8", "micro_speech_quantized", "person_detect", "simple_add_model", "trained_lstm_int8"]
# What the native runtime lacks, as it says so.
REFUSED = {
    # An int16 input, quantized to int8 by its first operator; then SVDF.
    "keyword_scrambled_8bit": r"model input 0 '' is int16 \(an int16x8 model, or int16 at the boundary\)",
}


def _random_inputs(model: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    reference = ReferenceInterpreter(model.read_bytes())
    rng = np.random.default_rng(seed)
    info = np.iinfo(np.int8)
    return [rng.integers(info.min, info.max + 1, size=(count, *t.shape[1:]), dtype=np.int8)
            for t in reference.inputs]


def test_every_model_is_covered():
    assert sorted(p.stem for p in TFLM_MODELS.glob("*.tflite")) == sorted(RUNS + list(REFUSED))


@pytest.mark.parametrize("name", RUNS)
def test_tflm_example_runs_bit_exact_natively(name):
    model = TFLM_MODELS / f"{name}.tflite"
    result = verify(model, _random_inputs(model, 6))
    assert result.samples == 6 and result.exact == 1.0, result


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_tflm_example_without_native_kernels_is_refused_naming_them(name, tmp_path):
    with pytest.raises(UserError) as refusal:
        generate(TFLM_MODELS / f"{name}.tflite", tmp_path / "out")
    message = str(refusal.value)
    assert re.search(REFUSED[name], message), message
    assert message.endswith("--runtime tflm (with --tflm-dir) builds the firmware on TFLM instead")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", sorted((TFLM_MODELS / "seanet").glob("*/*.tflite"))[::4],
                         ids=lambda p: p.stem)
def test_seanet_int16x8_models_are_refused_natively_pointing_at_tflm(model, tmp_path):
    with pytest.raises(UserError, match=r"is (int16 \(an int16x8 model|int32, not quantized int8)"):
        generate(model, tmp_path / "out")
