"""Cross-layer equalization and bias correction (issue #8) on the depthwise batch-norm pattern."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml_ptq.quantization.equalize import equalize_keras
from tinyml_ptq.quantization.model_loader import load_model
from tinyml_ptq.quantization.quantize import quantize

from calib_models import DIGITS_DIR


@pytest.fixture(scope="module")
def dw(depthwise_digits):
    return depthwise_digits


def _function_preserved(path, x):
    loaded = load_model(path)
    before = loaded.predict([x])[0]
    result = equalize_keras(loaded._model)
    after = loaded.predict([x])[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    return result


def test_equalization_keeps_the_function_and_evens_the_ranges(dw):
    x = np.load(dw["eval"])["x"]
    result = _function_preserved(dw["spread"], x)
    assert result.folded == 1
    assert ("dw", "pw") in result.pairs and ("conv", "dw") in result.pairs
    assert result.max_range_ratio_before > 300 and result.max_range_ratio_after < 10
    digits = _function_preserved(DIGITS_DIR / "digits_cnn.keras", x)
    assert digits.pairs == [("conv2d", "conv2d_1"), ("conv2d_1", "dense")]  # through MaxPool and Flatten


@pytest.mark.slow
def test_equalization_keeps_a_tf_keras_mobilenet_function(shared_models):
    """VWW (MobileNetV1, tf_keras, ReLU6): batch norms fold; ReLU6 pairs are left alone."""
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 96, 96, 3)).astype(np.float32)
    result = _function_preserved(shared_models / "vww_96.h5", x)
    assert result.folded > 10


def test_equalize_recovers_the_depthwise_batch_norm_pattern(dw, tmp_path):
    common = dict(eval_data=str(dw["eval"]))
    minmax = quantize(dw["spread"], str(dw["calib"]), tmp_path / "m.tflite", calibration="minmax", **common).report
    equalized = quantize(dw["spread"], str(dw["calib"]), tmp_path / "e.tflite", equalize=True, **common).report
    flt, lost = minmax["accuracy"]["float"], minmax["accuracy"]["int8"]
    assert flt - lost >= 0.015  # the pattern really hurts min/max
    assert equalized["accuracy"]["int8"] - lost >= 0.8 * (flt - lost)
    assert equalized["output_sqnr_db"] > minmax["output_sqnr_db"] + 10
    assert equalized["calibration"]["equalize"]["folded_batch_norms"] == 1


def test_bias_correction_removes_the_mean_shift(dw, tmp_path):
    common = dict(eval_data=str(dw["eval"]))
    plain = quantize(dw["spread"], str(dw["calib"]), tmp_path / "m.tflite", calibration="minmax", **common).report
    corrected = quantize(dw["spread"], str(dw["calib"]), tmp_path / "b.tflite", bias_correction=True,
                         calibration="minmax", **common).report
    assert corrected["calibration"]["bias_corrected_layers"] == 4  # conv, depthwise, pointwise, dense
    assert corrected["output_sqnr_db"] > plain["output_sqnr_db"] + 1.0
    assert corrected["accuracy"]["int8"] > plain["accuracy"]["int8"]


def test_equalize_refuses_a_savedmodel_signature(shared_models, tmp_path):
    from tinyml_ptq.core.errors import UserError

    np.savez(tmp_path / "mfcc.npz", x=np.random.default_rng(0).normal(size=(4, 49, 10, 1)).astype(np.float32))
    with pytest.raises(UserError, match="--equalize needs a Keras model"):
        quantize(shared_models / "kws_ref_model", str(tmp_path / "mfcc.npz"), tmp_path / "k.tflite", equalize=True)
