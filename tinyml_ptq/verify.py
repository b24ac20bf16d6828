"""The verify stage: generated C, built for the host, against the TFLM reference.

Runs every sample through our runtime (native build of the exact sources the
device gets) and through TFLite Micro's reference interpreter, and compares
every output byte. LiteRT's optimized kernels are compared too, for
information only: they round differently and may be off by one.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import progress
from .codegen import generate_model_sources
from .datasets import load_dataset
from .fileio import check_writable, write_text_atomic
from .errors import UserError
from .hostrun import build_host_runner, run_host
from .isolation import InterpreterFailure, IsolatedInterpreter
from .reference import ReferenceInterpreter, quantize_input
from .tflite_reader import read_tflite


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


def verify(model: str | Path, data: str | np.ndarray, limit: int | None = None,
           json_out: str | Path | None = None) -> VerifyResult:
    """Compare our runtime with TFLM on every sample of `data` (a dataset spec or an
    array; float samples are quantized with the input scale and zero point, int8
    samples are taken as they are)."""
    model = Path(model)
    check_writable(json_out, "--json")
    graph = read_tflite(model)
    tflite_bytes = model.read_bytes()
    sources = generate_model_sources(graph, tflite_bytes)
    reference = _reference(model, lambda: ReferenceInterpreter(tflite_bytes))
    if isinstance(data, np.ndarray):
        samples = data
    else:
        samples = load_dataset(data, reference.input.shape[1:], samples=None, what="--data", accept_int8=True).x
    if limit is not None:
        samples = samples[:limit]
    inputs = quantize_input(samples, reference.input).reshape(len(samples), -1)
    output_size = int(np.prod(reference.output.shape))

    progress.log(f"building {model.name} for the host ({len(sources.op_names)} ops, arena {sources.arena_bytes} B)")
    with tempfile.TemporaryDirectory(prefix="tinyml-ptq-verify-") as tmp:
        binary = build_host_runner(sources, Path(tmp), inputs.shape[1], output_size)
        ours = run_host(binary, inputs)
    expected = _reference(model, lambda: reference.invoke_many(progress.track(inputs, "TFLM reference")))
    try:
        litert = compare_outputs(ours, _litert_outputs(tflite_bytes, inputs, reference.input.shape))
    except InterpreterFailure as exc:  # informational only: the TFLM comparison stands without it
        progress.warn(f"{model}: no LiteRT comparison: {exc}")
        litert = None
    tflm = compare_outputs(ours, expected)

    result = VerifyResult(str(model), len(inputs), tflm.exact, tflm.max_abs_diff, sources.arena_bytes, litert)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _reference(model: Path, work):
    """TFLM's part of verify: without its outputs there is nothing to verify against."""
    try:
        return work()
    except InterpreterFailure as exc:
        raise UserError(f"{model}: verify has no reference to compare with: {exc}") from None


def _litert_outputs(tflite_bytes: bytes, inputs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    interpreter = IsolatedInterpreter("litert", tflite_bytes)
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for x in inputs:
        interpreter.set_tensor(in_index, x.reshape(shape))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out_index).copy())
    return np.stack(outputs)
