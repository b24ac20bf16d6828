"""The TFLite Micro reference interpreter (the `tflite_micro` package) as our oracle.

Every int8 result tinyml-ptq reports or checks against comes from here: it runs
TFLM's reference kernels on the host, which is what our runtime must match bit
for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


class ReferenceInterpreter:
    """One TFLM interpreter over a model, reused across samples.

    It runs in a child process (tinyml_ptq.isolation): TFLM aborts on some degenerate
    models, and that must end the child, not the toolkit. Failures raise
    `isolation.InterpreterFailure` with what TFLM printed.
    """

    def __init__(self, model_bytes: bytes, arena_size: int | None = None):
        from .isolation import IsolatedInterpreter

        self._interp = IsolatedInterpreter("tflm", model_bytes, arena_size=arena_size)
        self.input = _tensor_info(self._interp.get_input_details(0))
        self.output = _tensor_info(self._interp.get_output_details(0))

    def invoke(self, sample: np.ndarray) -> np.ndarray:
        """Run one sample already in the input tensor's dtype; returns the raw output."""
        data = np.asarray(sample, dtype=self.input.dtype).reshape(self.input.shape)
        self._interp.set_input(data, 0)
        self._interp.invoke()
        return np.array(self._interp.get_output(0), copy=True)

    def invoke_many(self, samples: Iterable[np.ndarray]) -> np.ndarray:
        return np.stack([self.invoke(s) for s in samples])


def _tensor_info(details: dict) -> TensorInfo:
    params = details.get("quantization_parameters") or {}
    scales = params.get("scales")
    zero_points = params.get("zero_points")
    scale = float(scales[0]) if scales is not None and len(scales) else 0.0
    zero_point = int(zero_points[0]) if zero_points is not None and len(zero_points) else 0
    return TensorInfo(tuple(int(d) for d in details["shape"]), np.dtype(details["dtype"]), scale, zero_point)


def quantize_input(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float samples to the input tensor's integer type, as TFLite's QUANTIZE does."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return np.asarray(x).astype(info.dtype)
    if info.scale == 0.0:
        return np.asarray(x, dtype=info.dtype)
    limits = np.iinfo(info.dtype)
    scaled = np.asarray(x, dtype=np.float64) / info.scale
    # Round half away from zero, as TFLite's QUANTIZE kernel (std::round) does.
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + info.zero_point
    return np.clip(q, limits.min, limits.max).astype(info.dtype)


def dequantize(q: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.scale == 0.0:
        return np.asarray(q, dtype=np.float32)
    return ((np.asarray(q, dtype=np.float64) - info.zero_point) * info.scale).astype(np.float32)
