"""Calibration methods (issue #8): the range-override route, each method, auto, the report, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core import json_files
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8
from tinyml_ptq.quantization.calibration import (AUTO_FOLDS, AUTO_MIN_GAIN_DB, MIN_FOLD_SAMPLES, _Tensor, calibrate,
                                                 candidate_range, fake_quant, quantize_calibrated)
from tinyml_ptq.quantization.conversion import Conversions
from tinyml_ptq.quantization.model_loader import import_tensorflow, load_model
from tinyml_ptq.quantization.quantize import quantize

from calib_models import DIGITS_DIR, eval_npz, outlier_calibration

DIGITS = DIGITS_DIR / "digits_cnn.keras"


@pytest.fixture(scope="module")
def digits():
    return load_model(DIGITS), np.load(DIGITS_DIR / "calib.npz")["x"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calib-data")
    return {"outliers": outlier_calibration(folder / "outliers.npz"), "eval": eval_npz(folder / "eval.npz")}


def _plain_converter_bytes(loaded, x) -> bytes:
    tf = import_tensorflow()
    converter = loaded.converter()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    converter.exclude_conversion_metadata = True
    converter.representative_dataset = lambda: ([s[None]] for s in x)
    return bytes(converter.convert())


def _interp_details(tflite: bytes):
    from tinyml_ptq.interpreters.litert import open_litert

    return {d["name"]: d for d in open_litert(tflite).get_tensor_details()}


def test_unedited_ranges_give_the_plain_converters_model(digits):
    loaded, x = digits
    plain = _plain_converter_bytes(loaded, x)
    assert quantize_calibrated(Conversions(loaded).calibrate_only([x])) == plain
    assert calibrate(loaded, x, "minmax").tflite == plain


def test_edited_ranges_reach_the_int8_model(digits):
    loaded, x = digits
    result = calibrate(loaded, x, "percentile:99")
    require_full_int8(result.tflite)
    details = _interp_details(result.tflite)
    edited = [t for t in result.tensors if t.method == "percentile:99" and t.op == "CONV_2D"]
    assert edited
    for t in edited:
        scale = details[t.name]["quantization_parameters"]["scales"][0]
        assert scale == pytest.approx((t.max - min(t.min, 0.0)) / 255.0, rel=1e-5)
    minmax = {t.name: t for t in calibrate(loaded, x, "minmax").tensors}
    assert all(t.max < minmax[t.name].max for t in edited)  # a percentile clips a ReLU output's top


def test_same_scale_ops_share_the_range_and_softmax_keeps_its_own(digits):
    loaded, x = digits
    result = calibrate(loaded, x, "percentile:99")
    by_op = {t.op: t for t in result.tensors}
    # MAX_POOL_2D and RESHAPE must carry their input's scale: one range for the group.
    conv_into_pool = next(t for t in result.tensors if t.op == "CONV_2D")
    assert (by_op["MAX_POOL_2D"].min, by_op["MAX_POOL_2D"].max) == (conv_into_pool.min, conv_into_pool.max)
    assert by_op["SOFTMAX"].method == "fixed"
    details = _interp_details(result.tflite)
    softmax = details[by_op["SOFTMAX"].name]["quantization_parameters"]
    assert (softmax["scales"][0], softmax["zero_points"][0]) == (pytest.approx(1 / 256), -128)


def test_candidates_on_known_values():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0, 1.0, size=(99, 100))
    glitch = clean[:1] * 100.0  # one sample of a hundred scaled x100
    t = _Tensor(0, "t", "CONV_2D", 0.0, 100.0, values=list(np.concatenate([clean, glitch])),
                sample_min=[0.0] * 100, sample_max=[float(v.max()) for v in np.concatenate([clean, glitch])])
    assert candidate_range(t, "minmax") == (0.0, 100.0)
    assert candidate_range(t, "percentile:99")[1] == pytest.approx(np.percentile(np.concatenate([clean.ravel(), glitch.ravel()]), 99))
    assert candidate_range(t, "samples:95")[1] < 1.0  # the glitched sample drops out
    lo, hi = candidate_range(t, "mse")
    v = np.concatenate(t.values)
    assert np.mean((fake_quant(v, lo, hi) - v) ** 2) <= np.mean((fake_quant(v, 0.0, 100.0) - v) ** 2)
    # fake_quant reproduces int8 rounding: 256 levels over the range, exact at zero.
    q = fake_quant(np.linspace(-1, 1, 1001), -1.0, 1.0)
    assert len(np.unique(q)) <= 256 and 0.0 in q


def _accuracy(report):
    return report["accuracy"]["float"], report["accuracy"]["int8"]


def test_the_default_auto_recovers_the_outlier_calibration_set(data, tmp_path):
    minmax = quantize(DIGITS, str(data["outliers"]), tmp_path / "m.tflite", eval_data=str(data["eval"]),
                      calibration="minmax").report
    auto = quantize(DIGITS, str(data["outliers"]), tmp_path / "a.tflite", eval_data=str(data["eval"])).report
    assert auto["calibration"]["method"] == "auto"  # the default for int8
    flt, lost = _accuracy(minmax)
    assert flt - lost > 0.02  # the pattern really hurts min/max
    assert auto["accuracy"]["int8"] - lost >= 0.8 * (flt - lost)
    assert auto["output_sqnr_db"] > minmax["output_sqnr_db"] + 3.0
    chosen = {t["method"] for t in auto["calibration"]["tensors"]}
    assert chosen - {"fixed"} and "minmax" in auto["calibration"]["selection_sqnr_db"]


@pytest.mark.parametrize("which", ["digits", "depthwise"])
def test_auto_on_a_clean_model_costs_at_most_half_a_db_and_no_accuracy(which, data, depthwise_digits, tmp_path):
    """Issue #8's clean-model target, on the evaluation data (auto only sees calibration samples)."""
    model, calib = (DIGITS, DIGITS_DIR / "calib.npz") if which == "digits" \
        else (depthwise_digits["clean"], depthwise_digits["calib"])
    common = dict(eval_data=str(data["eval"]))
    minmax = quantize(model, str(calib), tmp_path / "m.tflite", calibration="minmax", **common).report
    auto = quantize(model, str(calib), tmp_path / "a.tflite", calibration="auto", **common).report
    assert auto["output_sqnr_db"] >= minmax["output_sqnr_db"] - 0.5
    assert auto["accuracy"]["int8"] >= minmax["accuracy"]["int8"]


def test_auto_leaves_minmax_only_for_a_gain_on_every_fold(data, tmp_path):
    """On the outlier set every held-out fold gains more than the margin; otherwise auto keeps minmax."""
    report = quantize(DIGITS, str(data["outliers"]), tmp_path / "a.tflite", calibration="auto").report["calibration"]
    folds = report["selection_folds_db"]
    assert len(folds["minmax"]) == AUTO_FOLDS
    gains = np.array(folds["auto"]) - np.array(folds["minmax"])
    assert np.all(gains > AUTO_MIN_GAIN_DB)


def test_auto_with_too_few_samples_to_hold_out_keeps_minmax(digits):
    loaded, x = digits
    few = x[:2 * AUTO_FOLDS * MIN_FOLD_SAMPLES - 1]
    result = calibrate(loaded, few, "auto")
    assert result.tflite == calibrate(loaded, few, "minmax").tflite
    assert {t.method for t in result.tensors} <= {"minmax", "fixed"}


def test_report_sqnr_per_tensor_methods_and_sensitivity(tmp_path):
    result = quantize(DIGITS, str(DIGITS_DIR / "calib.npz"), tmp_path / "p.tflite", calibration="percentile:99.9",
                      report_path=tmp_path / "r.json")
    report = json_files.read(tmp_path / "r.json", "quantize_report", "")
    assert report == json.loads(json.dumps(result.report))
    assert report["output_sqnr_db"] > 20 and report["sqnr_samples"].endswith("calibration samples")
    assert report["calibration"]["method"] == "percentile:99.9"
    conv = [t for t in report["calibration"]["tensors"] if t["op"] == "CONV_2D"]
    assert conv and all(t["method"] == "percentile:99.9" and t["sqnr_db"] > 10 for t in conv)
    sens = report["sensitivity"]
    assert {row["op"] for row in sens} >= {"CONV_2D", "FULLY_CONNECTED"}
    drops = [row["drop_db"] for row in sens if row["drop_db"] is not None]
    assert drops == sorted(drops, reverse=True)


@pytest.mark.parametrize("args, message", [
    (["--calibration", "median"], "unknown --calibration"),
    (["--calibration", "percentile:101"], "percentile must be a number"),
    (["--calibration", "auto", "--mode", "float16"], "apply to --mode int8"),
])
def test_cli_refuses_bad_calibration_options(tmp_path, capsys, args, message):
    code = main(["quantize", str(DIGITS), "--data", str(DIGITS_DIR / "calib.npz"), "-o", str(tmp_path / "x.tflite"),
                 *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.tflite").exists()
