"""The TFLite Micro reference interpreter (the `tflite_micro` package) as our oracle.

Every int8 result tinyml-ptq reports or checks against comes from here: it runs
TFLM's reference kernels on the host, which is what our runtime must match bit
for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.errors import UserError


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class ReferenceInterpreter:
    """One TFLM interpreter over a model, reused across samples.

    It runs in a child process (tinyml_ptq.interpreters.isolation): TFLM aborts on some degenerate
    models, and that must end the child, not the toolkit. Failures raise
    `isolation.InterpreterFailure` with what TFLM printed.

    A model with variable tensors (an LSTM's state) is reset before every invocation, as
    TFLM's own LSTM example does: each sample is one independent sequence, from the state
    the native runtime also starts every invocation from, whatever ran before it.
    """

    def __init__(self, model_bytes: bytes, arena_size: int | None = None):
        from ..compiler.tflite_reader import has_variable_tensors, io_counts
        from .isolation import IsolatedInterpreter

        self._interp = IsolatedInterpreter("tflm", model_bytes, arena_size=arena_size)
        self._model = model_bytes
        self._stateful = has_variable_tensors(model_bytes)
        num_inputs, num_outputs = io_counts(model_bytes)
        self.inputs = [tensor_info(self._interp.get_input_details(i)) for i in range(num_inputs)]
        self.outputs = [tensor_info(self._interp.get_output_details(i)) for i in range(num_outputs)]
        self.input, self.output = self.inputs[0], self.outputs[0]

    def invoke(self, sample: np.ndarray) -> np.ndarray:
        """Run one sample of a one-input model, already in the input's dtype; returns output 0."""
        data = np.asarray(sample, dtype=self.input.dtype).reshape(self.input.shape)
        self._interp.set_input(data, 0)
        self._invoke()
        return np.array(self._interp.get_output(0), copy=True)

    def _invoke(self) -> None:
        from .isolation import InterpreterFailure

        if self._stateful:
            self._interp.reset()  # the variable tensors back to their initial values
        try:
            self._interp.invoke()
        except InterpreterFailure as exc:
            cause = abort_cause(self._model) if exc.crashed else ""
            if not cause:
                raise
            raise InterpreterFailure(exc.kind, exc.action, f"{exc.detail}; {cause}", crashed=True) from None

    def invoke_many(self, samples: Iterable[np.ndarray]) -> np.ndarray:
        return np.stack([self.invoke(s) for s in samples])

    def invoke_bytes(self, sample: bytes | np.ndarray) -> np.ndarray:
        """Run one sample given as raw bytes: every input end to end, in index order (what the
        device protocol and the host runner take). Returns every output's bytes, end to end, as int8."""
        raw = np.frombuffer(bytes(np.ascontiguousarray(sample)), dtype=np.uint8)
        expected = sum(info.nbytes for info in self.inputs)
        if raw.size != expected:
            raise ValueError(f"sample has {raw.size} bytes; the model's inputs take {expected}")
        at = 0
        for index, info in enumerate(self.inputs):
            size = info.nbytes
            self._interp.set_input(raw[at:at + size].view(info.dtype).reshape(info.shape), index)
            at += size
        self._invoke()
        return np.concatenate([np.ascontiguousarray(self._interp.get_output(i)).reshape(-1).view(np.int8)
                               for i in range(len(self.outputs))])


# TFLM's int8 softmax sums a row's exponentials in Q12.19 and stops (TFLITE_CHECK, an abort) when
# the sum reaches 2^9: only a row of 512 or more classes, nearly equal, can get there.
SOFTMAX_ABORT_DEPTH = 512


def abort_cause(model_bytes: bytes) -> str:
    """What in the model makes TFLM abort during invoke, where the model shows it; else ""."""
    from ..compiler.tflite_reader import parse_tflite

    graph = parse_tflite(model_bytes)
    for op in graph.operators:
        inp = graph.tensors[op.inputs[0]] if op.inputs else None
        if op.opcode == "SOFTMAX" and inp is not None and inp.dtype == "int8" and inp.shape \
                and inp.shape[-1] >= SOFTMAX_ABORT_DEPTH:
            return (f"the likely cause is SOFTMAX (node {op.index}) over {inp.shape[-1]} classes: TFLM's int8 "
                    f"softmax stops when a row's exponentials sum to {SOFTMAX_ABORT_DEPTH} or more, which takes "
                    "hundreds of nearly equal logits, as an untrained network gives; train the model, or calibrate "
                    "and evaluate with real data")
    return ""


def tensor_info(details: dict) -> TensorInfo:
    """The shape, type and (first) quantization of a tensor from its interpreter details (TFLM's and
    LiteRT's share the layout)."""
    params = details.get("quantization_parameters") or {}
    scales = params.get("scales")
    zero_points = params.get("zero_points")
    scale = float(scales[0]) if scales is not None and len(scales) else 0.0
    zero_point = int(zero_points[0]) if zero_points is not None and len(zero_points) else 0
    return TensorInfo(tuple(int(d) for d in details["shape"]), np.dtype(details["dtype"]), scale, zero_point)


def quantize_input(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float samples to the input tensor's integer type, as TFLite's QUANTIZE does."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        if np.asarray(x).dtype != info.dtype:  # quantized for another type: a cast would change values
            raise UserError(f"samples are {np.asarray(x).dtype} but the model input is {info.dtype}; give float "
                            f"samples (quantized here) or {info.dtype} ones")
        return np.asarray(x)
    if info.scale == 0.0:
        return np.asarray(x, dtype=info.dtype)
    limits = np.iinfo(info.dtype)
    scaled = np.asarray(x, dtype=np.float64) / info.scale
    # Round half away from zero, as TFLite's QUANTIZE kernel (std::round) does.
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + info.zero_point
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def sample_shape(shape) -> tuple[int, ...]:
    """One sample's shape: a tensor's shape without its batch axis of 1 (data files hold [N, *this])."""
    dims = tuple(int(d) for d in shape)
    return dims[1:] if len(dims) > 1 and dims[0] == 1 else dims


def sample_rows(xs: list[np.ndarray], infos: list[TensorInfo]) -> np.ndarray:
    """Samples of every input, each quantized to its input's type, as one row of raw bytes
    per sample (int8), inputs end to end in index order: what the device and the host runner take."""
    if len(xs) != len(infos):
        raise UserError(f"{len(xs)} input arrays for a model with {len(infos)} inputs")
    parts = []
    for k, (x, info) in enumerate(zip(xs, infos)):
        x = np.asarray(x)
        elements = int(np.prod(info.shape, dtype=np.int64))
        if x.size == elements and (x.ndim == 1 or len(x) != 1 and x.size // len(x) != elements):
            x = x.reshape(1, -1)  # one sample without a sample axis
        rows = x.reshape(len(x), -1)
        if rows.shape[1] != elements:
            raise UserError(f"each sample of input {k} has {rows.shape[1]} values (shape {tuple(x.shape[1:])}) but "
                            f"the model input has {elements} (shape {tuple(info.shape)}); check the data file")
        parts.append(np.ascontiguousarray(quantize_input(rows, info)).view(np.int8).reshape(len(rows), -1))
    if len({len(p) for p in parts}) > 1:
        raise UserError(f"the inputs hold different numbers of samples ({', '.join(str(len(p)) for p in parts)})")
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def output_values(rows: np.ndarray, infos: list[TensorInfo], index: int = 0) -> np.ndarray:
    """Output `index` of each row of output bytes (all outputs end to end), in its own type: [N, elements]."""
    rows = np.ascontiguousarray(rows).view(np.int8).reshape(len(rows), -1)
    start = sum(info.nbytes for info in infos[:index])
    part = np.ascontiguousarray(rows[:, start:start + infos[index].nbytes])
    return part.view(infos[index].dtype).reshape(len(rows), -1)


def dequantize(q: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.scale == 0.0:
        return np.asarray(q, dtype=np.float32)
    return ((np.asarray(q, dtype=np.float64) - info.zero_point) * info.scale).astype(np.float32)
