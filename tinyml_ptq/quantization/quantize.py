"""The quantize stage: float model + calibration data -> verified full-integer .tflite.

`int8` (the default) is full-integer static post-training quantization; it is the
only mode later stages take (they call `require_full_int8`). `int16x8`, `dynamic`
and `float16` exist to compare against in the report.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..core import json_files, progress
from ..core.errors import UserError
from ..core.fileio import check_writable, write_bytes_atomic
from ..interpreters.tflite_inspect import require_full_int8
from .conversion import Converter, ConverterCrash, crash_prone_layers

MODES = ("int8", "int16x8", "dynamic", "float16")


@dataclass
class QuantizeResult:
    output: Path
    mode: str
    size_bytes: int
    loader: str
    ops: list[str]
    report: dict
    report_path: Path | None
    seconds: float
    calibration: str = "minmax"


def quantize(model: str | os.PathLike, data: str, output: str | os.PathLike, *, samples: int = 200,
             mode: str = "int8", per_tensor: bool = False, eval_data: str | None = None,
             report_path: str | os.PathLike | None = None, eval_samples: int = 1000,
             calibration: str | None = None, equalize: bool = False, bias_correction: bool = False,
             precheck=None) -> QuantizeResult:
    """Quantize MODEL with calibration DATA, write OUTPUT (and the JSON report), return the result.

    `calibration`, `equalize` and `bias_correction` (int8 only) are described in
    tinyml_ptq/quantization/calibration.py and tinyml_ptq/quantization/equalize.py. `calibration` None
    means auto for int8 (it keeps the converter's min/max unless held-out
    samples show a clear gain) and minmax for the comparison modes.

    Every input is checked before conversion starts; OUTPUT is replaced only
    once the converted model exists and (for int8) passed `require_full_int8`.
    `precheck(float_tflite)`, if given, sees the float conversion before calibration
    starts (seconds rather than minutes): deploy refuses there what it can already tell.
    """
    from ..core.datasets import load_inputs
    from .model_loader import load_model
    from .quant_report import build_report

    start = time.monotonic()
    if mode not in MODES:
        raise UserError(f"unsupported mode {mode!r}; choose one of {', '.join(MODES)}")
    from .calibration import parse_method

    requested = calibration
    calibration = parse_method(calibration if calibration is not None else "auto" if mode == "int8" else "minmax")
    tuned = calibration != "minmax" or equalize or bias_correction
    if tuned and mode != "int8":
        raise UserError(f"--calibration, --equalize and --bias-correction apply to --mode int8, not {mode}")
    output = Path(output)
    _check_output(output, [Path(model), Path(str(data))] + ([Path(str(eval_data))] if eval_data else []))
    if report_path is not None:
        _check_output(Path(report_path), [Path(model), output])

    # The child loads the model while this process does (an equalized one: once it is edited).
    converter = None if equalize else Converter(model)
    loaded = None
    try:
        progress.log(f"loading {model}")
        loaded = load_model(model)
        shapes = ", ".join(str(list(s)) for s in loaded.input_shapes)
        outputs = ", ".join(str(list(s)) for s in loaded.output_shapes)
        progress.log(f"loaded with {loaded.loader}: input {shapes}, output {outputs}")
        io = (len(loaded.input_shapes), len(loaded.output_shapes))
        if io != (1, 1) and tuned:
            if requested is not None or equalize or bias_correction:
                raise UserError(f"{model} has {io[0]} input{'s' if io[0] > 1 else ''} and {io[1]} "
                                f"output{'s' if io[1] > 1 else ''}; --calibration, --equalize and --bias-correction "
                                "take models with one input and one output")
            calibration, tuned = "minmax", False
            progress.log("calibration: minmax (auto chooses ranges for models with one input and one output)")
        calib = load_inputs(data, loaded.input_shapes, samples, what="--data")
        evaluation = load_inputs(eval_data, loaded.input_shapes, eval_samples, what="--eval") if eval_data else None
        equalized = None
        if equalize:
            from .equalize import equalize_model

            equalized = equalize_model(loaded)
            converter = Converter(model, edited_copy_of=loaded)
        tflite, float_tflite, calibrated = _convert(converter, loaded, mode, calib.xs, per_tensor, calibration,
                                                    tuned, bias_correction, precheck)
        int8_tflite = None
        if mode == "int16x8" and evaluation is not None:  # the choice a user makes: is 16x8 worth its cost?
            try:
                int8_tflite = converter.convert("int8", calib.xs, per_tensor)
            except UserError as exc:
                progress.warn(f"quantize report: no int8 comparison: {exc}")
    except ConverterCrash as exc:
        suspects = crash_prone_layers(loaded)
        raise UserError(f"{exc}; it is known to crash on {', '.join(suspects)}: see 'Recurrent layers' in docs/quantize.md "
                        "for the forms that convert" if suspects else str(exc)) from None
    finally:
        if converter is not None:
            converter.close()
    if mode == "int8":
        require_full_int8(tflite, origin=f"the converted {Path(model).name}")
    elif mode == "int16x8":
        progress.log("note: int16x8 models run natively for the operators with int16x8 kernels "
                     "(docs/operators.md), and on --runtime tflm")
    else:
        progress.log(f"note: --mode {mode} is for comparison only; later stages take int8 and int16x8 models")
    _write(output, lambda: write_bytes_atomic(output, tflite))
    progress.log(f"wrote {output} ({len(tflite)} bytes)")

    report = build_report(loaded, mode, per_tensor, float_tflite, tflite, calib, evaluation,
                          calibration=calibrated, equalized=equalized, bias_correction=bias_correction)
    if int8_tflite is not None:
        from ..interpreters.isolation import InterpreterFailure
        from .quant_report import int8_comparison

        try:
            report["int8_comparison"] = int8_comparison(loaded, int8_tflite, evaluation)
        except (InterpreterFailure, UserError) as exc:
            progress.warn(f"quantize report: no int8 comparison: {exc}")
    if report_path is not None:
        _write(report_path, lambda: json_files.write(report_path, "quantize_report", report))
    return QuantizeResult(output, mode, len(tflite), loaded.loader, report["ops"], report,
                          Path(report_path) if report_path is not None else None, time.monotonic() - start,
                          calibration)


def _convert(converter, loaded, mode, calib_xs, per_tensor, calibration, tuned, bias_correction, precheck):
    """(quantized model, float model, Calibration or None)."""
    # After equalization, before calibration: what the float model shows is said in seconds.
    float_tflite = converter.convert("float32", None)
    if precheck is not None:
        precheck(float_tflite)
    if not tuned:
        return converter.convert(mode, calib_xs, per_tensor=per_tensor), float_tflite, None
    from .calibration import calibrate

    calibrated = calibrate(loaded, calib_xs[0], calibration, per_tensor=per_tensor, bias_correction=bias_correction,
                           converter=converter)
    progress.log(f"calibration {calibration}: {calibrated.seconds:.2f} s")
    return calibrated.tflite, float_tflite, calibrated


def _check_output(output: Path, inputs: list[Path]) -> None:
    """Refuse outputs that cannot work before spending minutes on conversion."""
    if output.is_dir():
        raise UserError(f"output {output} is a folder; give a file path")
    for source in inputs:
        if source.exists() and output.exists() and output.resolve() == source.resolve():
            raise UserError(f"output {output} is also an input; write the result to another path")
    check_writable(output, "output")


def _write(path, action) -> None:
    try:
        action()
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location") from None
