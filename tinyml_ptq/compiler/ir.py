"""A small graph IR for quantized TFLite models: tensors, operators, options.

Produced by `tflite_reader`, consumed by lowering, planning and code generation.
Plain data only: no TensorFlow, no behaviour beyond convenience look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# TFLite's TensorType codes of the types a model's inputs and outputs can have: the
# generated model.h and the device protocol (INFO) name a tensor's type by them.
TENSOR_TYPE_CODES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}


@dataclass
class Quantization:
    scale: np.ndarray  # float32, one per channel or a single value
    zero_point: np.ndarray  # int64, same length as scale
    axis: int = 0  # quantized dimension for per-channel tensors

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "int8", "int32", "float32", ...
    quantization: Quantization | None = None
    data: np.ndarray | None = None  # constant data (weights, biases, shape operands)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * np.dtype(self.dtype).itemsize

    @property
    def type_code(self) -> int:
        return TENSOR_TYPE_CODES[self.dtype]

    @property
    def scale(self) -> float:
        """The single scale of a per-tensor quantized tensor."""
        assert self.quantization is not None, f"tensor {self.name!r} is not quantized"
        return float(self.quantization.scale[0])

    @property
    def zero_point(self) -> int:
        assert self.quantization is not None, f"tensor {self.name!r} is not quantized"
        return int(self.quantization.zero_point[0])


@dataclass
class Operator:
    index: int
    opcode: str  # builtin operator name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices; -1 marks an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)  # snake_case builtin options
    version: int = 1


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.tensors[index]

    def input_tensors(self, op: Operator) -> list[Tensor | None]:
        return [self.tensor(i) for i in op.inputs]

    def output_tensors(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs]

    def opcodes(self) -> list[str]:
        """Distinct operators in order of first use."""
        return list(dict.fromkeys(op.opcode for op in self.operators))
