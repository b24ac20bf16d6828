"""The verify stage: generated C, built for the host, against the TFLM reference.

Runs every sample through our runtime (native build of the exact sources the
device gets) and through TFLite Micro's reference interpreter, and compares
every output byte. LiteRT's optimized kernels are compared too, for
information only: they round differently and may be off by one.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..compiler.codegen import generate_model_sources
from ..compiler.tflite_reader import read_tflite
from ..core import json_files, progress
from ..core.datasets import load_inputs
from ..core.errors import UserError
from ..core.fileio import check_writable
from ..interpreters.isolation import InterpreterFailure, IsolatedInterpreter
from ..interpreters.reference import ReferenceInterpreter, sample_rows, sample_shape
from .hostrun import build_host_runner, run_host


@dataclass
class Comparison:
    exact: float  # fraction of samples whose output bytes are identical
    max_abs_diff: int


@dataclass
class VerifyResult:
    model: str
    samples: int
    exact: float
    max_abs_diff: int
    arena_bytes: int
    litert: Comparison | None  # None when LiteRT could not run the model (a warning says why)

    @property
    def ok(self) -> bool:
        return self.exact == 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def compare_outputs(ours: np.ndarray, theirs: np.ndarray) -> Comparison:
    ours = ours.reshape(len(ours), -1).astype(np.int32)
    theirs = theirs.reshape(len(theirs), -1).astype(np.int32)
    same = np.all(ours == theirs, axis=1)
    return Comparison(float(same.mean()) if len(same) else 0.0, int(np.abs(ours - theirs).max(initial=0)))


def verify(model: str | Path, data: str | np.ndarray | list[np.ndarray], limit: int | None = None,
           json_out: str | Path | None = None) -> VerifyResult:
    """Compare our runtime with TFLM on every sample of `data` (a dataset spec, or an array per
    input; float samples are quantized with each input's scale and zero point, quantized ones
    are taken as they are)."""
    model = Path(model)
    check_writable(json_out, "--json")
    graph = read_tflite(model)
    tflite_bytes = model.read_bytes()
    sources = generate_model_sources(graph, tflite_bytes)
    reference = _reference(model, lambda: ReferenceInterpreter(tflite_bytes))
    if isinstance(data, np.ndarray):
        xs = [data]
    elif isinstance(data, list):
        xs = data
    else:
        xs = load_inputs(data, [sample_shape(t.shape) for t in reference.inputs], samples=None, what="--data",
                         accept_int8=True).xs
    if limit is not None:
        xs = [x[:limit] for x in xs]
    inputs = sample_rows(xs, reference.inputs)

    progress.log(f"building {model.name} for the host ({len(sources.op_names)} ops, arena {sources.arena_bytes} B)")
    with tempfile.TemporaryDirectory(prefix="tinyml-ptq-verify-") as tmp:
        output_size = sum(t.nbytes for t in reference.outputs)
        binary = build_host_runner(sources, Path(tmp), inputs.shape[1], output_size)
        ours = run_host(binary, inputs)
    expected = _reference(model, lambda: np.stack(
        [reference.invoke_bytes(row) for row in progress.track(inputs, "TFLM reference")]))
    try:
        litert = compare_outputs(ours, _litert_outputs(tflite_bytes, inputs, reference))
    except InterpreterFailure as exc:  # informational only: the TFLM comparison stands without it
        progress.warn(f"{model}: no LiteRT comparison: {exc}")
        litert = None
    tflm = compare_outputs(ours, expected)

    result = VerifyResult(str(model), len(inputs), tflm.exact, tflm.max_abs_diff, sources.arena_bytes, litert)
    if json_out is not None:
        json_files.write(json_out, "verify", result.to_dict())
    return result


def _reference(model: Path, work):
    """TFLM's part of verify: without its outputs there is nothing to verify against."""
    try:
        return work()
    except InterpreterFailure as exc:
        raise UserError(f"{model}: verify has no reference to compare with: {exc}") from None


def _litert_outputs(tflite_bytes: bytes, inputs: np.ndarray, reference: ReferenceInterpreter) -> np.ndarray:
    """LiteRT's outputs for rows of input bytes, as rows of output bytes (int8), like the others."""
    interpreter = IsolatedInterpreter("litert", tflite_bytes)
    in_details = interpreter.get_input_details()
    out_details = interpreter.get_output_details()
    outputs = []
    for row in inputs:
        at = 0
        for detail, info in zip(in_details, reference.inputs):
            part = np.ascontiguousarray(row[at:at + info.nbytes]).view(info.dtype).reshape(info.shape)
            interpreter.set_tensor(detail["index"], part)
            at += info.nbytes
        interpreter.invoke()
        outputs.append(np.concatenate([np.ascontiguousarray(interpreter.get_tensor(d["index"])).reshape(-1).view(np.int8)
                                       for d in out_details]))
    return np.stack(outputs)
