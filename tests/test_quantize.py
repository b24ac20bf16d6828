"""The quantize stage end to end with the real converter: digits accuracy, modes, the
full-int8 check, the CLI's handling of bad input, and the four MLPerf Tiny float models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.interpreters.tflite_inspect import require_full_int8, tflite_ops
from tinyml_ptq.quantization.quant_report import format_report
from tinyml_ptq.quantization.quantize import quantize

from conftest import DIGITS_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}
MODEL = DIGITS_DIR / "digits_cnn.keras"
CALIB = str(DIGITS_DIR / "calib.npz")


def _litert_top1(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of a full-int8 model in LiteRT, quantizing inputs by hand from the tensor's parameters."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    hits = 0
    for sample, label in zip(x, y):
        q = np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q[None])
        interp.invoke()
        hits += int(interp.get_tensor(out["index"])[0].argmax() == label)
    return hits / len(y)


def test_digits_int8_top1_close_to_float(digits_quantized):
    import keras

    with np.load(DIGITS_DIR / "eval.npz") as f:
        x, y = f["x"], f["y"]
    float_top1 = float(np.mean(keras.saving.load_model(MODEL).predict(x, verbose=0).argmax(1) == y))
    tflite = digits_quantized.output.read_bytes()
    litert_top1 = _litert_top1(tflite, x, y)
    report = digits_quantized.report
    assert report["accuracy"]["float"] == pytest.approx(float_top1)
    assert report["eval"]["samples"] == len(y) and report["eval"]["quantized_runtime"] == "tflm"
    # TFLM (report) and LiteRT may round a few logits differently, never by much.
    assert abs(report["accuracy"]["int8"] - litert_top1) <= 0.01
    assert report["accuracy"]["int8"] >= float_top1 - 0.015
    assert litert_top1 >= float_top1 - 0.015
    assert report["agreement"] >= 0.97


def test_digits_int8_file_and_report(digits_quantized):
    tflite = digits_quantized.output.read_bytes()
    require_full_int8(tflite)
    graph = parse_tflite(tflite)
    ops = [op.opcode for op in graph.operators]
    assert not DYNAMIC_BATCH_OPS & set(ops)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert inp.shape == (1, 8, 8, 1) and inp.dtype == "int8" and out.dtype == "int8"
    # Per-channel weights by default: one scale per output channel of the first convolution.
    conv = next(op for op in graph.operators if op.opcode == "CONV_2D")
    assert len(graph.tensors[conv.inputs[1]].quantization.scale) == 16

    report = json.loads((digits_quantized.report_path).read_text())
    assert report["loader"] == "keras3" and report["ops"] == ops
    assert report["size_bytes"]["int8"] == len(tflite)
    assert report["size_bytes"]["float"] > 2 * len(tflite)
    assert report["input"]["scale"] == pytest.approx(float(inp.quantization.scale[0]))
    assert report["input"]["zero_point"] == int(inp.quantization.zero_point[0])
    assert report["output"]["scale"] == pytest.approx(float(out.quantization.scale[0]))
    assert report["output"]["zero_point"] == int(out.quantization.zero_point[0])
    assert set(report["accuracy"]) == {"float", "int8"} and 0 <= report["agreement"] <= 1
    layers = report["layers"]
    assert {layer["op"] for layer in layers} >= {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"}
    ratios = [layer["rmse_over_scale"] for layer in layers]
    assert ratios == sorted(ratios, reverse=True)
    # Quantization error of a calibrated activation is a fraction of a step or a few steps, not zero.
    assert all(0 < layer["rmse"] and 0 < r < 8 for layer, r in zip(layers, ratios))


def test_per_tensor_weights(tmp_path):
    result = quantize(MODEL, CALIB, tmp_path / "pt.tflite", samples=50, per_tensor=True)
    graph = parse_tflite(result.output.read_bytes())
    for op in graph.operators:
        if op.opcode in ("CONV_2D", "FULLY_CONNECTED"):
            assert len(graph.tensors[op.inputs[1]].quantization.scale) == 1, op.opcode
    require_full_int8(result.output.read_bytes())
    assert result.report["weights"] == "per-tensor"


@pytest.mark.parametrize("mode, first_bad, tensor_type", [
    ("int16x8", "CONV_2D", "int16"),
    ("dynamic", "CONV_2D", "float32"),
    ("float16", "DEQUANTIZE", "float16"),
])
def test_comparison_modes_are_refused_by_the_int8_check(tmp_path, mode, first_bad, tensor_type):
    result = quantize(MODEL, CALIB, tmp_path / f"{mode}.tflite", samples=20, mode=mode,
                      eval_data=str(DIGITS_DIR / "eval.npz"), eval_samples=60)
    tflite = result.output.read_bytes()
    assert result.size_bytes == len(tflite) and result.report["mode"] == mode
    assert result.report["eval"]["quantized_runtime"] == "litert"
    assert result.report["agreement"] >= 0.95
    if mode == "int16x8":  # what int8 gives on the same samples, for the user to weigh 16x8 against
        versus = result.report["int8_comparison"]
        assert versus["runtime"] == "tflm" and versus["size_bytes"] < result.size_bytes
        assert 0.9 <= versus["accuracy"] <= 1.0 and versus["output_sqnr_db"] < result.report["output_sqnr_db"]
        assert re.search(r"int8 instead +top-1 \d+\.\d+ %, output SQNR", format_report(result.report))
    else:
        assert "int8_comparison" not in result.report
    with pytest.raises(UserError, match=rf"not fully int8: \d+ operators block it: operator 0 {first_bad} "
                                        rf".*{tensor_type}") as refusal:
        require_full_int8(tflite)
    # Every blocking operator is named at once, not just the first.
    assert str(refusal.value).count("; operator ") >= 1


def test_require_full_int8_on_non_tflite():
    with pytest.raises(UserError, match="not a TFLite flatbuffer"):
        require_full_int8(b"PK\x03\x04 not a model")


def test_require_full_int8_on_truncated(digits_int8_tflite):
    data = digits_int8_tflite.read_bytes()
    with pytest.raises(UserError, match="corrupt or truncated"):
        require_full_int8(data[: len(data) // 3])


def test_unsupported_mode_api(tmp_path):
    with pytest.raises(UserError, match="unsupported mode 'int4'"):
        quantize(MODEL, CALIB, tmp_path / "x.tflite", mode="int4")


# --- the CLI on bad input: exit 2, one error line, nothing the user had is touched ---

def _bad_inputs(tmp_path):
    data = MODEL.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    (tmp_path / "model.onnx").write_bytes(b"not a keras model")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "flat.npz", x=rng.uniform(size=(5, 64)).astype(np.float32))
    nan = rng.uniform(size=(5, 8, 8, 1)).astype(np.float32)
    nan[3, 2, 2, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan)
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8, 1), np.float32))
    (tmp_path / "data.txt").write_text("1 2 3\n")
    return {
        "missing model": ([str(tmp_path / "nope.keras"), "--data", CALIB], "no such file or folder"),
        "truncated model": ([str(tmp_path / "cut.keras"), "--data", CALIB], "corrupt or truncated"),
        "corrupt h5": ([str(tmp_path / "garbage.h5"), "--data", CALIB], "corrupt or truncated"),
        "unknown model format": ([str(tmp_path / "model.onnx"), "--data", CALIB], "unknown model format"),
        "missing data": ([str(MODEL), "--data", str(tmp_path / "none.npz")], "no such file"),
        "unknown data format": ([str(MODEL), "--data", str(tmp_path / "data.txt")], "unknown data format"),
        "bad data shape": ([str(MODEL), "--data", str(tmp_path / "flat.npz")], r"shape \[64\]"),
        "NaN data": ([str(MODEL), "--data", str(tmp_path / "nan.npz")], "NaN or Inf"),
        "empty data": ([str(MODEL), "--data", str(tmp_path / "empty.npz")], "no samples"),
        "bad eval": ([str(MODEL), "--data", CALIB, "--eval", str(tmp_path / "nan.npz")], "--eval .*NaN"),
        "unsupported mode": ([str(MODEL), "--data", CALIB, "--mode", "int4"], "--mode"),
    }


def test_cli_bad_inputs(tmp_path, capfd):
    out = tmp_path / "out.tflite"
    report = tmp_path / "report.json"
    out.write_bytes(b"previous result")
    report.write_text("{}")
    inputs = {p: p.read_bytes() for p in tmp_path.iterdir()}
    for case, (args, message) in _bad_inputs(tmp_path).items():
        capfd.readouterr()
        code = main(["quantize", *args, "-o", str(out), "--report", str(report)])
        captured = capfd.readouterr()
        lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
        assert code == 2, case
        # short, but for the user's own paths (pytest-xdist's temp paths are longer)
        assert len(lines) == 1 and len(lines[0].replace(str(tmp_path), "T")) < 400, (case, captured.err)
        assert captured.err.rstrip().endswith(lines[0]), (case, captured.err)  # the error is the last word
        assert "Traceback" not in captured.err + captured.out, case
        assert re.search(message, lines[0]), (case, lines[0])
        assert out.read_bytes() == b"previous result", case
        assert report.read_text() == "{}", case
    for path, content in inputs.items():
        assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_cli_subprocess_error_is_one_line(tmp_path):
    """The installed entry point, as a user runs it: one stderr line, status 2, no traceback."""
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04truncated")
    proc = subprocess.run([sys.executable, "-m", "tinyml_ptq", "quantize", str(tmp_path / "m.keras"),
                           "--data", CALIB, "-o", str(tmp_path / "o.tflite")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("error: ") and "m.keras" in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == proc.stderr.splitlines()[-1:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.tflite").exists()


def test_cli_json_output(tmp_path, capfd):
    out = tmp_path / "d.tflite"
    assert main(["quantize", str(MODEL), "--data", CALIB, "--samples", "30", "-o", str(out), "--json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["size_bytes"]["int8"] == out.stat().st_size
    assert report["calibration"]["samples"] == 30 and report["accuracy"] == {"float": None, "int8": None}


# --- the four MLPerf Tiny float models ---

MLPERF = {
    "kws_ref_model": ("saved_model", (49, 10, 1)),
    "vww_96.h5": ("tf_keras", (96, 96, 3)),
    "resnet8_cifar10.h5": ("keras3", (32, 32, 3)),
    "ad01.h5": ("keras3", (640,)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MLPERF))
def test_mlperf_float_model_quantizes_to_full_int8(shared_models, tmp_path, name):
    loader, shape = MLPERF[name]
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.uniform(0, 1, size=(8, *shape)).astype(np.float32))
    # AD01 is an autoencoder: its report compares outputs by RMSE, not by argmax.
    eval_data = str(tmp_path / "calib.npy") if name == "ad01.h5" else None
    result = quantize(shared_models / name, str(tmp_path / "calib.npy"), tmp_path / "int8.tflite", samples=8,
                      eval_data=eval_data)
    tflite = result.output.read_bytes()
    require_full_int8(tflite)
    ops = tflite_ops(tflite)
    assert not DYNAMIC_BATCH_OPS & set(ops), ops
    # No operator beyond those of MLCommons' own int8 file (whose older converter kept a RESHAPE more).
    reference = shared_models / (name.removesuffix(".h5") + "_int8.tflite")
    assert set(ops) <= set(tflite_ops(reference.read_bytes())), ops
    assert result.loader == loader
    graph = parse_tflite(tflite)
    assert graph.tensors[graph.inputs[0]].shape == (1, *shape)
    assert result.report["layers"], "per-layer table is empty"
    if eval_data:
        assert result.report["agreement"] is None and result.report["accuracy"] == {"float": None, "int8": None}
        import keras

        float_out = keras.saving.load_model(shared_models / name, compile=False).predict(
            np.load(tmp_path / "calib.npy"), verbose=0)
        # Quantization error well below the signal (AD01 reconstructs its input's scale).
        assert 0 < result.report["output_rmse"] < 0.1 * float(np.sqrt(np.mean(float_out ** 2)))


def test_cli_refuses_to_overwrite_an_input(tmp_path, capfd):
    calib = tmp_path / "calib.npz"
    calib.write_bytes((DIGITS_DIR / "calib.npz").read_bytes())
    before = calib.read_bytes()
    assert main(["quantize", str(MODEL), "--data", str(calib), "-o", str(calib)]) == 2
    assert "is also an input" in capfd.readouterr().err
    assert calib.read_bytes() == before
