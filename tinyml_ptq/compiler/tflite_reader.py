"""Read a `.tflite` flatbuffer into the graph IR, without importing TensorFlow.

The schema bindings come from the `tflite_micro` package (pure Python), so a
CLI command that only generates code starts in a fraction of a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from .ir import Graph, Operator, Quantization, Tensor
from .validate import enum_names, validate_model, validate_shapes

_TENSOR_TYPES = {
    "FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64",
    "INT8": "int8", "UINT8": "uint8", "INT16": "int16", "UINT16": "uint16",
    "INT32": "int32", "UINT32": "uint32", "INT64": "int64", "UINT64": "uint64",
    "BOOL": "bool",
}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read_tflite(path: str | Path) -> Graph:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give the path of a quantized .tflite model") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; give the path of a .tflite file") from None
    return parse_tflite(data, name=path.stem, origin=str(path))


def parse_tflite(data: bytes, name: str = "model", origin: str = "model") -> Graph:
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError(f"{origin} is not a TFLite flatbuffer (no 'TFL3' identifier); give a .tflite file")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    except Exception as exc:  # flatbuffers raises assorted errors on truncated data
        raise UserError(f"{origin} is corrupt or truncated ({type(exc).__name__}); re-export the model") from None
    validate_model(model, schema, origin)  # indices, sizes, scales, order: the graph below can trust them
    graph = _to_graph(model, schema, name)
    validate_shapes(graph, origin)
    return graph


def io_counts(data: bytes) -> tuple[int, int]:
    """Inputs and outputs of the (first) subgraph of a model the reader has accepted, read cheaply."""
    sub = _schema().Model.GetRootAsModel(data, 0).Subgraphs(0)
    return sub.InputsLength(), sub.OutputsLength()


def has_variable_tensors(data: bytes) -> bool:
    """Whether the model keeps state across TFLM invocations (an LSTM's hidden and cell state)."""
    model = _schema().Model.GetRootAsModel(data, 0)
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        if any(sub.Tensors(i).IsVariable() for i in range(sub.TensorsLength())):
            return True
    return False


def _to_graph(model, schema, name: str) -> Graph:
    if len(model.subgraphs) > 1:
        raise UserError(f"model has {len(model.subgraphs)} subgraphs; only single-subgraph models are supported")
    builtin_names = enum_names(schema.BuiltinOperator)
    type_names = enum_names(schema.TensorType)
    sub = model.subgraphs[0]
    buffers = model.buffers or []

    tensors = []
    for index, t in enumerate(sub.tensors or []):
        type_name = type_names.get(t.type, str(t.type))
        dtype = _TENSOR_TYPES.get(type_name)
        if dtype is None:
            raise UserError(f"tensor {index} has unsupported type {type_name}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        data = None
        if t.buffer > 0 and buffers[t.buffer].data is not None and len(buffers[t.buffer].data):
            raw = np.asarray(buffers[t.buffer].data, dtype=np.uint8).tobytes()
            data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale):
            quant = Quantization(
                scale=np.asarray(q.scale, dtype=np.float32),
                zero_point=np.asarray(q.zeroPoint, dtype=np.int64),
                axis=int(q.quantizedDimension),
            )
        tensor_name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or "")
        tensors.append(Tensor(index, tensor_name, shape, dtype, quant, data))

    operators = []
    for index, op in enumerate(sub.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        opcode = builtin_names.get(builtin, f"BUILTIN_{builtin}")
        if opcode == "CUSTOM":
            custom = code.customCode.decode("utf-8", "replace") if code.customCode else "?"
            opcode = f"CUSTOM:{custom}"
        options = {}
        if op.builtinOptions is not None:
            options = {_snake(k): v for k, v in vars(op.builtinOptions).items()}
        operators.append(
            Operator(
                index=index,
                opcode=opcode,
                inputs=[int(i) for i in (op.inputs if op.inputs is not None else [])],
                outputs=[int(i) for i in (op.outputs if op.outputs is not None else [])],
                options=options,
                version=int(code.version),
            )
        )
    return Graph(
        name=name,
        tensors=tensors,
        operators=operators,
        inputs=[int(i) for i in (sub.inputs if sub.inputs is not None else [])],
        outputs=[int(i) for i in (sub.outputs if sub.outputs is not None else [])],
    )
