"""The quantize report: what the model became and what quantization cost.

Float accuracy comes from the loaded model itself (Keras or the SavedModel
signature). The quantized model runs in the TFLite Micro reference interpreter
for int8, the firmware's oracle; the comparison modes (int16x8, dynamic,
float16) run in LiteRT. The per-layer table runs the float and quantized
.tflite files side by side in LiteRT, keeping every intermediate tensor.
"""

from __future__ import annotations

import numpy as np

from . import progress
from .reference import ReferenceInterpreter, dequantize, quantize_input
from .reference import _tensor_info as _info  # LiteRT details share TFLM's dict layout

# Per-layer errors are averaged over this many samples; enough for a stable ranking.
LAYER_SAMPLES = 32


def build_report(loaded, mode: str, per_tensor: bool, float_tflite: bytes, quant_tflite: bytes,
                 calib, evaluation) -> dict:
    from .quantize import tflite_ops

    quant_io = _litert_io(quant_tflite)
    report = {
        "model": str(loaded.path),
        "loader": loaded.loader,
        "mode": mode,
        # Only static integer modes choose between per-channel and per-tensor weight scales.
        "weights": ("per-tensor" if per_tensor else "per-channel") if mode in ("int8", "int16x8") else None,
        "ops": tflite_ops(quant_tflite),
        "size_bytes": {"float": len(float_tflite), "int8": len(quant_tflite)},
        "input": quant_io["input"],
        "output": quant_io["output"],
        "calibration": {"source": calib.source, "samples": len(calib.x), "available": calib.total},
        "eval": None,
        "accuracy": {"float": None, "int8": None},
        "agreement": None,
        "output_rmse": None,
        "layers": [],
    }
    if evaluation is not None:
        report.update(_evaluate(loaded, mode, quant_tflite, report["ops"], evaluation))
    layer_x = (evaluation if evaluation is not None else calib).x[:LAYER_SAMPLES]
    report["layers"] = layer_errors(float_tflite, quant_tflite, layer_x)
    return report


def _evaluate(loaded, mode: str, quant_tflite: bytes, ops: list[str], evaluation) -> dict:
    x, y = evaluation.x, evaluation.y
    progress.log(f"float inference on {len(x)} samples ({loaded.loader})")
    float_out = loaded.predict(x).reshape(len(x), -1)
    if mode == "int8":
        runtime, quant_out = "tflm", _run_tflm(quant_tflite, x)
    else:
        runtime, quant_out = "litert", _run_litert(quant_tflite, x)
    quant_out = quant_out.reshape(len(x), -1)
    classes = float_out.shape[1]
    labels = y is not None and y.ndim == 1 and np.issubdtype(y.dtype, np.integer) \
        and classes > 1 and y.min() >= 0 and y.max() < classes
    # A classifier: labelled with class indices, or ending in a softmax.
    classifier = labels or (classes > 1 and bool(ops) and ops[-1] == "SOFTMAX")
    result = {
        "eval": {"source": evaluation.source, "samples": len(x), "available": evaluation.total,
                 "quantized_runtime": runtime},
        "output_rmse": float(np.sqrt(np.mean((quant_out - float_out) ** 2))),
    }
    if classifier:
        result["agreement"] = float(np.mean(quant_out.argmax(1) == float_out.argmax(1)))
    if labels:
        result["accuracy"] = {"float": float(np.mean(float_out.argmax(1) == y)),
                              "int8": float(np.mean(quant_out.argmax(1) == y))}
    return result


def _run_tflm(tflite: bytes, x: np.ndarray) -> np.ndarray:
    interp = ReferenceInterpreter(tflite)
    outputs = [interp.invoke(quantize_input(s[None], interp.input))
               for s in progress.track(x, "int8 inference (TFLM reference)")]
    return dequantize(np.stack(outputs), interp.output)


def _litert(tflite: bytes, preserve: bool = False):
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from .model_loader import native_stderr_captured

    # Without the default XNNPACK delegate every operator runs on its own, so
    # each intermediate tensor exists and belongs to one operator.
    with native_stderr_captured(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors warns that it is for debugging; it is
        interp = Interpreter(model_content=tflite, experimental_preserve_all_tensors=preserve,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp.allocate_tensors()
    return interp


def _litert_io(tflite: bytes) -> dict:
    interp = _litert(tflite)

    def describe(details):
        info = _info(details)
        return {"shape": list(info.shape), "dtype": info.dtype.name, "scale": info.scale,
                "zero_point": info.zero_point}

    return {"input": describe(interp.get_input_details()[0]), "output": describe(interp.get_output_details()[0])}


def _run_litert(tflite: bytes, x: np.ndarray) -> np.ndarray:
    interp = _litert(tflite)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_info, out_info = _info(inp), _info(out)
    outputs = []
    for s in progress.track(x, "quantized inference (LiteRT)"):
        interp.set_tensor(inp["index"], quantize_input(s[None], in_info))
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).copy())
    return dequantize(np.stack(outputs), out_info)


def _op_outputs(interp) -> list[tuple[str, int]]:
    """(opcode, first output tensor index) per operator, without QUANTIZE/DEQUANTIZE.

    Those two only move between float and integer, so what remains lines up
    operator by operator between the float and the quantized graph.
    """
    return [(op["op_name"], op["outputs"][0]) for op in interp._get_ops_details()
            if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and len(op["outputs"])]


def layer_errors(float_tflite: bytes, quant_tflite: bytes, x: np.ndarray) -> list[dict]:
    """RMSE between float and dequantized activations per operator output, worst (by RMSE/scale) first."""
    f_interp, q_interp = _litert(float_tflite, preserve=True), _litert(quant_tflite, preserve=True)
    f_ops, q_ops = _op_outputs(f_interp), _op_outputs(q_interp)
    f_details = {d["index"]: d for d in f_interp.get_tensor_details()}
    q_details = {d["index"]: d for d in q_interp.get_tensor_details()}
    if [op for op, _ in f_ops] != [op for op, _ in q_ops]:
        progress.log("note: the float and quantized graphs differ in their operators; no per-layer table")
        return []
    pairs = [(f, q) for (_, f), (_, q) in zip(f_ops, q_ops)]
    opcode = dict((q, op) for op, q in q_ops)
    f_in, q_in = f_interp.get_input_details()[0], q_interp.get_input_details()[0]
    q_in_info = _info(q_in)
    sq = np.zeros(len(pairs))
    count = np.zeros(len(pairs))
    for s in progress.track(x, "per-layer errors (LiteRT)"):
        f_interp.set_tensor(f_in["index"], s[None].astype(np.float32))
        f_interp.invoke()
        q_interp.set_tensor(q_in["index"], quantize_input(s[None], q_in_info))
        q_interp.invoke()
        for k, (f, q) in enumerate(pairs):
            ref = f_interp.get_tensor(f).astype(np.float64)
            got = dequantize(q_interp.get_tensor(q), _info(q_details[q])).astype(np.float64)
            sq[k] += float(np.sum((got - ref) ** 2))
            count[k] += ref.size
    layers = []
    for k, (f, q) in enumerate(pairs):
        rmse = float(np.sqrt(sq[k] / count[k]))
        scale = _info(q_details[q]).scale
        layers.append({"name": f_details[f]["name"], "op": opcode[q], "rmse": rmse,
                       "rmse_over_scale": rmse / scale if scale else None})
    return sorted(layers, key=lambda r: (r["rmse_over_scale"] is None, -(r["rmse_over_scale"] or r["rmse"])))


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def format_report(report: dict, max_layers: int = 12) -> str:
    """The report as a readable table (what the CLI prints)."""
    inp, out = report["input"], report["output"]
    rows = [
        ("model", report["model"]),
        ("loader", report["loader"]),
        ("mode", report["mode"] + (f" ({report['weights']} weights)" if report["weights"] else "")),
        ("ops", f"{len(report['ops'])}: " + ", ".join(_counts(report["ops"]))),
        ("size float", f"{report['size_bytes']['float']:,} B"),
        (f"size {report['mode']}", f"{report['size_bytes']['int8']:,} B "
                                   f"({report['size_bytes']['int8'] / report['size_bytes']['float']:.2f}x)"),
        ("input", f"{inp['dtype']} {inp['shape']} scale {inp['scale']:.6g} zero point {inp['zero_point']}"),
        ("output", f"{out['dtype']} {out['shape']} scale {out['scale']:.6g} zero point {out['zero_point']}"),
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
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    layers = report["layers"]
    if layers:
        lines += ["", f"per-layer error, worst first ({min(len(layers), max_layers)} of {len(layers)}):",
                  f"  {'rmse/scale':>10}  {'rmse':>10}  {'op':<18} tensor"]
        for layer in layers[:max_layers]:
            ratio = "-" if layer["rmse_over_scale"] is None else f"{layer['rmse_over_scale']:.3f}"
            name = layer["name"] if len(layer["name"]) <= 60 else layer["name"][:57] + "..."
            lines.append(f"  {ratio:>10}  {layer['rmse']:>10.4g}  {layer['op']:<18} {name}")
    return "\n".join(lines)


def _counts(ops: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return [f"{op} x{n}" if n > 1 else op for op, n in counts.items()]
