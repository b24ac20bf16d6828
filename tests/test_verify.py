"""`tinyml-ptq verify`: our generated C against the TFLite Micro reference, whole models."""

import json
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.pipeline.verify import compare_outputs

from conftest import SHARED_MODELS as MODELS_DIR

REPO = Path(__file__).resolve().parents[1]
MLPERF = ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8"]


def test_verify_digits_example_is_exact(digits_int8_tflite, tmp_path, capsys):
    report = tmp_path / "verify.json"
    status = main(["verify", str(digits_int8_tflite), "--data", str(REPO / "examples/digits/eval.npz"),
                   "--json", str(report)])
    result = json.loads(report.read_text())
    assert status == 0, capsys.readouterr().out
    assert result["samples"] == 360 and result["exact"] == 1.0 and result["max_abs_diff"] == 0
    assert result["arena_bytes"] > 0
    assert 0.0 <= result["litert"]["exact"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF)
def test_verify_mlperf_models_are_exact(name, tmp_path):
    path = MODELS_DIR / f"{name}.tflite"
    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    shape = ReferenceInterpreter(path.read_bytes()).input.shape
    samples = np.random.default_rng(3).integers(-128, 128, size=(6, *shape[1:]), dtype=np.int8)
    np.save(tmp_path / "x.npy", samples)
    report = tmp_path / "verify.json"
    assert main(["verify", str(path), "--data", str(tmp_path / "x.npy"), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["exact"] == 1.0


def test_compare_outputs_counts_samples_and_largest_difference():
    ours = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.int8)
    theirs = ours.copy()
    theirs[1, 2] = 9
    result = compare_outputs(ours, theirs)
    assert result.exact == pytest.approx(2 / 3) and result.max_abs_diff == 3


def test_verify_refuses_a_missing_model(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope.tflite"), "--data", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_verify_refuses_data_of_the_wrong_shape(digits_int8_tflite, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 5, 5, 1), np.float32))
    assert main(["verify", str(digits_int8_tflite), "--data", str(tmp_path / "x.npy")]) == 2
    assert "shape" in capsys.readouterr().err
