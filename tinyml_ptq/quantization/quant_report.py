"""The quantize report: what the model became and what quantization cost.

Float accuracy comes from the loaded model itself (Keras or the SavedModel
signature). The quantized model runs in the TFLite Micro reference interpreter
for int8, the firmware's oracle; the comparison modes (int16x8, dynamic,
float16) run in LiteRT. The per-layer table runs the float and quantized
.tflite files side by side in LiteRT, keeping every intermediate tensor.
"""

from __future__ import annotations

import numpy as np

from ..core import progress
from ..core.datasets import check_class_labels
from ..core.errors import shorten
from ..interpreters.isolation import InterpreterFailure
from ..interpreters.litert import open_litert
from ..interpreters.reference import (ReferenceInterpreter, dequantize, output_values, quantize_input, sample_rows,
                                      tensor_info)
from ..interpreters.tflite_inspect import tflite_ops

# Per-layer errors are averaged over this many samples; enough for a stable ranking.
LAYER_SAMPLES = 32
# Without evaluation data, the output SQNR is measured on this many calibration samples.
SQNR_SAMPLES = 64


def build_report(loaded, mode: str, per_tensor: bool, float_tflite: bytes, quant_tflite: bytes,
                 calib, evaluation, calibration=None, equalized=None, bias_correction: bool = False) -> dict:
    quant_io = _litert_io(quant_tflite)
    report = {
        "model": str(loaded.path),
        "loader": loaded.loader,
        "mode": mode,
        # Only static integer modes choose between per-channel and per-tensor weight scales.
        "weights": ("per-tensor" if per_tensor else "per-channel") if mode in ("int8", "int16x8") else None,
        "ops": tflite_ops(quant_tflite),
        "size_bytes": {"float": len(float_tflite), "int8": len(quant_tflite)},
        "input": quant_io["inputs"][0],  # the first; "inputs" lists every one
        "inputs": quant_io["inputs"],
        "output": quant_io["outputs"][0],  # the first; "outputs" lists every one
        "outputs": quant_io["outputs"],
        "calibration": {"source": calib.source, "samples": len(calib), "available": calib.total,
                        "method": calibration.method if calibration is not None else "minmax",
                        "equalize": None if equalized is None else {
                            "pairs": [list(p) for p in equalized.pairs], "folded_batch_norms": equalized.folded,
                            "range_ratio_before": equalized.max_range_ratio_before,
                            "range_ratio_after": equalized.max_range_ratio_after},
                        "bias_correction": bias_correction,
                        "bias_corrected_layers": calibration.bias_corrected if calibration is not None else 0,
                        "selection_sqnr_db": dict(calibration.selection_sqnr_db) if calibration is not None else {},
                        "selection_folds_db": dict(calibration.selection_folds_db) if calibration is not None else {},
                        "seconds": calibration.seconds if calibration is not None else None,
                        "tensors": [] if calibration is None else [vars(t) for t in calibration.tensors]},
        "eval": None,
        "accuracy": {"float": None, "int8": None},
        "agreement": None,
        "output_rmse": None,
        "output_sqnr_db": None,
        "sqnr_samples": None,
        "layers": [],
        "sensitivity": [],
    }
    # The quantized model is written already; an interpreter that cannot run it (TFLM aborts on
    # a degenerate softmax scale) costs the report its figures, not the stage.
    try:
        if evaluation is not None:
            report.update(_evaluate(loaded, mode, quant_tflite, report["ops"], evaluation))
        else:  # no evaluation data: the output SQNR on (up to SQNR_SAMPLES) calibration samples
            xs = [x[:SQNR_SAMPLES] for x in calib.xs]
            count = len(xs[0])
            float_out = _flat(loaded.predict(xs))
            quant_out = _flat(_run_tflm(quant_tflite, xs) if mode == "int8" else _run_litert(quant_tflite, xs))
            report["output_sqnr_db"] = sqnr_db(float_out, quant_out)
            report["sqnr_samples"] = f"{count} calibration samples"
    except InterpreterFailure as exc:
        progress.warn(f"quantize report: no accuracy or SQNR of the quantized model: {exc}")
    layer_xs = [x[:LAYER_SAMPLES] for x in (evaluation if evaluation is not None else calib).xs]
    try:
        report["layers"] = layer_errors(float_tflite, quant_tflite, layer_xs)
    except InterpreterFailure as exc:
        progress.warn(f"quantize report: no per-layer errors: {exc}")
    report["sensitivity"] = sensitivity(report["layers"])
    return report


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float | None:
    """Signal to quantization noise ratio of `got` against `ref` in dB (None when there is no noise)."""
    noise = float(np.sum((np.asarray(got, np.float64) - np.asarray(ref, np.float64)) ** 2))
    signal = float(np.sum(np.asarray(ref, np.float64) ** 2))
    return None if noise == 0.0 else float(10.0 * np.log10(max(signal, 1e-30) / noise))


def sensitivity(layers: list[dict]) -> list[dict]:
    """Layers by the SQNR they lose (their input's SQNR minus their output's), most costly first.

    A layer's output error is what reached its input plus what its own
    quantization (weights, output rounding and clipping) adds; the drop is the
    part it adds.
    """
    by_name = {layer["name"]: layer for layer in layers}
    rows = []
    for layer in layers:
        if layer.get("sqnr_db") is None:
            continue
        source = by_name.get(layer.get("input"))
        before = source["sqnr_db"] if source is not None and source.get("sqnr_db") is not None \
            else layer.get("input_sqnr_db")
        drop = None if before is None else before - layer["sqnr_db"]
        rows.append({"name": layer["name"], "op": layer["op"], "sqnr_db": layer["sqnr_db"], "drop_db": drop})
    return sorted(rows, key=lambda r: -(r["drop_db"] if r["drop_db"] is not None else -1e9))


def _evaluate(loaded, mode: str, quant_tflite: bytes, ops: list[str], evaluation) -> dict:
    xs, y, count = evaluation.xs, evaluation.y, len(evaluation)
    progress.log(f"float inference on {count} samples ({loaded.loader})")
    float_outs = loaded.predict(xs)
    if mode == "int8":
        runtime, quant_outs = "tflm", _run_tflm(quant_tflite, xs)
    else:
        runtime, quant_outs = "litert", _run_litert(quant_tflite, xs)
    float_out, quant_out = _flat(float_outs), _flat(quant_outs)
    # Classes, agreement and accuracy are the first output's; the errors cover every output.
    float_first, quant_first = float_outs[0].reshape(count, -1), quant_outs[0].reshape(count, -1)
    classes = float_first.shape[1]
    labels = check_class_labels(y, classes, f"--eval {evaluation.source}")
    # A classifier: labelled with class indices, or ending in a softmax.
    classifier = labels or (classes > 1 and bool(ops) and ops[-1] == "SOFTMAX")
    result = {
        "eval": {"source": evaluation.source, "samples": count, "available": evaluation.total,
                 "quantized_runtime": runtime},
        "output_rmse": float(np.sqrt(np.mean((quant_out - float_out) ** 2))),
        "output_sqnr_db": sqnr_db(float_out, quant_out),
        "sqnr_samples": f"{count} evaluation samples",
    }
    if classifier:
        result["agreement"] = float(np.mean(quant_first.argmax(1) == float_first.argmax(1)))
    if labels:
        result["accuracy"] = {"float": float(np.mean(float_first.argmax(1) == y)),
                              "int8": float(np.mean(quant_first.argmax(1) == y))}
    return result


def _flat(outputs: list[np.ndarray]) -> np.ndarray:
    """Every output of each sample in one row: [N, total values]."""
    return np.concatenate([o.reshape(len(o), -1) for o in outputs], axis=1)


def int8_comparison(loaded, int8_tflite: bytes, evaluation) -> dict:
    """What plain int8 gives on the same evaluation samples: the figures a user weighs a 16x8
    model's cost against."""
    figures = _evaluate(loaded, "int8", int8_tflite, tflite_ops(int8_tflite), evaluation)
    return {"accuracy": (figures.get("accuracy") or {}).get("int8"), "output_sqnr_db": figures["output_sqnr_db"],
            "size_bytes": len(int8_tflite), "runtime": figures["eval"]["quantized_runtime"]}


def _run_tflm(tflite: bytes, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Every output, dequantized, for float samples of every input."""
    interp = ReferenceInterpreter(tflite)
    rows = np.stack([interp.invoke_bytes(row) for row in
                     progress.track(sample_rows(xs, interp.inputs), "int8 inference (TFLM reference)")])
    return [dequantize(output_values(rows, interp.outputs, k), out).reshape(len(rows), *out.shape[1:])
            for k, out in enumerate(interp.outputs)]


def _litert_io(tflite: bytes) -> dict:
    interp = open_litert(tflite)

    def describe(details):
        info = tensor_info(details)
        return {"shape": list(info.shape), "dtype": info.dtype.name, "scale": info.scale,
                "zero_point": info.zero_point}

    return {"inputs": [describe(d) for d in interp.get_input_details()],
            "outputs": [describe(d) for d in interp.get_output_details()]}


def _set_inputs(interp, details: list[dict], xs: list[np.ndarray], i: int, quantized: bool) -> None:
    """Sample i of every input into a LiteRT interpreter (quantized to each input's type, or float)."""
    for d, x in zip(details, xs):
        interp.set_tensor(d["index"], quantize_input(x[i][None], tensor_info(d)) if quantized
                          else x[i][None].astype(np.float32))


def _run_litert(tflite: bytes, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Every output, dequantized, for float samples of every input."""
    interp = open_litert(tflite)
    inputs, outs = interp.get_input_details(), interp.get_output_details()
    values: list[list[np.ndarray]] = [[] for _ in outs]
    for i in progress.track(range(len(xs[0])), "quantized inference (LiteRT)"):
        _set_inputs(interp, inputs, xs, i, quantized=True)
        interp.invoke()
        for k, out in enumerate(outs):
            values[k].append(interp.get_tensor(out["index"]).copy())
    return [dequantize(np.stack(v), tensor_info(out)) for v, out in zip(values, outs)]


def _op_outputs(interp) -> list[tuple[str, int]]:
    """(opcode, first output tensor index) per operator, without QUANTIZE/DEQUANTIZE.

    Those two only move between float and integer, so what remains lines up
    operator by operator between the float and the quantized graph.
    """
    return [(op["op_name"], op["outputs"][0]) for op in interp._get_ops_details()
            if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and len(op["outputs"])]


def _op_inputs(interp) -> dict[int, int]:
    """First output tensor -> first input tensor, per operator."""
    return {op["outputs"][0]: op["inputs"][0] for op in interp._get_ops_details()
            if len(op["outputs"]) and len(op["inputs"])}


def layer_errors(float_tflite: bytes, quant_tflite: bytes, xs: list[np.ndarray]) -> list[dict]:
    """RMSE between float and dequantized activations per operator output, worst (by RMSE/scale) first."""
    f_interp, q_interp = open_litert(float_tflite, preserve=True), open_litert(quant_tflite, preserve=True)
    f_ops, q_ops = _op_outputs(f_interp), _op_outputs(q_interp)
    f_details = {d["index"]: d for d in f_interp.get_tensor_details()}
    q_details = {d["index"]: d for d in q_interp.get_tensor_details()}
    if [op for op, _ in f_ops] != [op for op, _ in q_ops]:
        progress.log("note: the float and quantized graphs differ in their operators; no per-layer table")
        return []
    pairs = [(f, q) for (_, f), (_, q) in zip(f_ops, q_ops)]
    opcode = dict((q, op) for op, q in q_ops)
    f_ins, q_ins = f_interp.get_input_details(), q_interp.get_input_details()
    sq = np.zeros(len(pairs))
    signal = np.zeros(len(pairs))
    count = np.zeros(len(pairs))
    f_input_of = _op_inputs(f_interp)
    # Per model input (by its float tensor index): the error of its own int8 rounding.
    input_sq = {d["index"]: 0.0 for d in f_ins}
    input_signal = dict(input_sq)
    for i in progress.track(range(len(xs[0])), "per-layer errors (LiteRT)"):
        _set_inputs(f_interp, f_ins, xs, i, quantized=False)
        f_interp.invoke()
        _set_inputs(q_interp, q_ins, xs, i, quantized=True)
        q_interp.invoke()
        for k, (f, q) in enumerate(pairs):
            ref = f_interp.get_tensor(f).astype(np.float64)
            got = dequantize(q_interp.get_tensor(q), tensor_info(q_details[q])).astype(np.float64)
            sq[k] += float(np.sum((got - ref) ** 2))
            signal[k] += float(np.sum(ref ** 2))
            count[k] += ref.size
        for f_in, q_in, x in zip(f_ins, q_ins, xs):
            info = tensor_info(q_in)
            fq = dequantize(quantize_input(x[i][None], info), info).astype(np.float64)
            input_sq[f_in["index"]] += float(np.sum((fq - x[i][None]) ** 2))
            input_signal[f_in["index"]] += float(np.sum(np.asarray(x[i], np.float64) ** 2))
    layers = []
    for k, (f, q) in enumerate(pairs):
        rmse = float(np.sqrt(sq[k] / count[k]))
        scale = tensor_info(q_details[q]).scale
        source = f_input_of.get(f)
        layers.append({"name": f_details[f]["name"], "op": opcode[q], "rmse": rmse,
                       "rmse_over_scale": rmse / scale if scale else None,
                       "sqnr_db": None if sq[k] == 0 else float(10 * np.log10(max(signal[k], 1e-30) / sq[k])),
                       "input": f_details[source]["name"] if source in f_details else None,
                       "input_sqnr_db": None if not input_sq.get(source)
                       else float(10 * np.log10(input_signal[source] / input_sq[source]))})
    return sorted(layers, key=lambda r: (r["rmse_over_scale"] is None, -(r["rmse_over_scale"] or r["rmse"])))


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def format_report(report: dict, max_layers: int = 12) -> str:
    """The report as a readable table (what the CLI prints)."""
    rows = [
        ("model", report["model"]),
        ("loader", report["loader"]),
        ("mode", report["mode"] + (f" ({report['weights']} weights)" if report["weights"] else "")),
        ("ops", f"{len(report['ops'])}: " + ", ".join(_counts(report["ops"]))),
        ("size float", f"{report['size_bytes']['float']:,} B"),
        (f"size {report['mode']}", f"{report['size_bytes']['int8']:,} B "
                                   f"({report['size_bytes']['int8'] / report['size_bytes']['float']:.2f}x)"),
        *((f"input {k}" if len(report["inputs"]) > 1 else "input",
           f"{t['dtype']} {t['shape']} scale {t['scale']:.6g} zero point {t['zero_point']}")
          for k, t in enumerate(report["inputs"])),
        *((f"output {k}" if len(report["outputs"]) > 1 else "output",
           f"{t['dtype']} {t['shape']} scale {t['scale']:.6g} zero point {t['zero_point']}")
          for k, t in enumerate(report["outputs"])),
        ("calibration", f"{report['calibration']['samples']} of {report['calibration']['available']} samples "
                        f"from {report['calibration']['source']}"),
    ]
    if report["eval"] is not None:
        ev = report["eval"]
        rows += [
            ("eval", f"{ev['samples']} of {ev['available']} samples from {ev['source']}"),
            ("top-1 float", _pct(report["accuracy"]["float"])),
            (f"top-1 {report['mode']}", _pct(report["accuracy"]["int8"]) + f"  ({ev['quantized_runtime']})"),
            ("argmax agreement", _pct(report["agreement"])),
            ("output RMSE", f"{report['output_rmse']:.6g}"),
        ]
    cal = report["calibration"]
    rows.append(("output SQNR", _db(report["output_sqnr_db"]) + f"  ({report['sqnr_samples']})"))
    versus = report.get("int8_comparison")
    if versus:
        rows.append(("int8 instead", f"top-1 {_pct(versus['accuracy'])}, output SQNR {_db(versus['output_sqnr_db'])}, "
                                     f"{versus['size_bytes']:,} B (same evaluation samples, {versus['runtime']})"))
    rows.append(("ranges", cal["method"] + (f", chosen in {cal['seconds']:.2f} s" if cal["seconds"] else "")
                 + (", equalized" if cal["equalize"] else "") + (", bias corrected" if cal["bias_correction"] else "")))
    if cal["selection_sqnr_db"]:
        rows.append(("held-out SQNR", ", ".join(f"{m} {_db(v)}" for m, v in cal["selection_sqnr_db"].items())))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    layers = report["layers"]
    if layers:
        lines += ["", f"per-layer error, worst first ({min(len(layers), max_layers)} of {len(layers)}):",
                  f"  {'rmse/scale':>10}  {'rmse':>10}  {'op':<18} tensor"]
        for layer in layers[:max_layers]:
            ratio = "-" if layer["rmse_over_scale"] is None else f"{layer['rmse_over_scale']:.3f}"
            lines.append(f"  {ratio:>10}  {layer['rmse']:>10.4g}  {layer['op']:<18} {shorten(layer['name'])}")
    sens = [row for row in report.get("sensitivity", []) if row["drop_db"] is not None]
    if sens:
        lines += ["", f"sensitivity, SQNR each layer loses, most costly first ({min(len(sens), 5)} of {len(sens)}):",
                  f"  {'drop dB':>8}  {'SQNR dB':>8}  {'op':<18} tensor"]
        for row in sens[:5]:
            lines.append(f"  {row['drop_db']:>8.2f}  {row['sqnr_db']:>8.2f}  {row['op']:<18} {shorten(row['name'])}")
    if cal["tensors"]:
        lines += ["", "activation ranges (method, range, SQNR of the tensor's int8 rounding and clipping):"]
        for t in cal["tensors"]:
            span = "fixed by the op" if t["method"] == "fixed" else f"[{t['min']:.4g}, {t['max']:.4g}]"
            lines.append(f"  {t['method']:<17} {span:<22} {_db(t['sqnr_db']):>9}  {shorten(t['name'])}")
    return "\n".join(lines)


def _db(value) -> str:
    return "-" if value is None else f"{value:.2f} dB"


def _counts(ops: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return [f"{op} x{n}" if n > 1 else op for op, n in counts.items()]
