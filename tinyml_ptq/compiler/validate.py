"""Validate a decoded `.tflite` flatbuffer before anything reads it as a graph.

A damaged or hostile file decodes into any values at all: indices past the end
of a table, buffers shorter than their tensors, NaN or infinite scales, zero
points outside their type, an operator using a tensor before any operator
writes it, option values outside their enums. Each of those used to surface
deep in the reader or the lowering as a Python traceback. Here each becomes
one `UserError` line, `<file>: <what>, <where>`, raised before the reader
builds the graph IR, so every stage (generate, verify, deploy, the TFLM route)
gets the same checks.

Checked: what a well-formed model guarantees, whichever runtime executes it.
What only our runtime cannot do (an operator, a type, a softmax scale TFLite's
fixed-point kernel cannot represent) is the lowering's refusal, not this one's.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..core.errors import UserError
from .ir import Graph, Operator

# TensorType -> numpy dtype name, for the types whose data and zero points are checked.
INTEGER_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "UINT16": (0, 65535),
                  "INT32": (-(1 << 31), (1 << 31) - 1), "UINT32": (0, (1 << 32) - 1),
                  "INT64": (-(1 << 63), (1 << 63) - 1)}
ITEM_SIZES = {"FLOAT32": 4, "FLOAT16": 2, "FLOAT64": 8, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2,
              "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8, "BOOL": 1}
# No tensor of a model for a microcontroller comes near this; beyond it sizes overflow C's int32.
MAX_TENSOR_BYTES = 1 << 31
MAX_RANK = 8
# Options that name an enum member, and options that are counts (a stride of 0 divides by zero).
ENUM_OPTIONS = {"fusedActivationFunction": "ActivationFunctionType", "padding": "Padding"}
POSITIVE_OPTIONS = ("strideW", "strideH", "dilationWFactor", "dilationHFactor", "filterWidth", "filterHeight",
                    "depthMultiplier")
# The builtin options table each operator the converter writes carries (when it carries one).
OPTIONS_OF = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions", "ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions",
    "SOFTMAX": "SoftmaxOptions", "LEAKY_RELU": "LeakyReluOptions", "CONCATENATION": "ConcatenationOptions",
    "PAD": "PadOptions", "PADV2": "PadV2Options", "RESHAPE": "ReshapeOptions", "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions", "QUANTIZE": "QuantizeOptions", "DEQUANTIZE": "DequantizeOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions", "RESIZE_BILINEAR": "ResizeBilinearOptions",
}


def enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


def validate_model(model, schema, origin: str) -> None:
    """Raise `UserError("<origin>: <what>, <where>")` for the first defect of `model` (a `ModelT`)."""
    _Validator(model, schema, origin).run()


class _Validator:
    def __init__(self, model, schema, origin: str):
        self.model, self.schema, self.origin = model, schema, origin
        self.type_names = enum_names(schema.TensorType)
        self.builtin_names = enum_names(schema.BuiltinOperator)
        self.option_names = enum_names(schema.BuiltinOptions)

    def fail(self, what: str, where: str) -> None:
        raise UserError(f"{self.origin}: {what}, {where}")

    def run(self) -> None:
        model = self.model
        if not model.subgraphs:
            self.fail("the model has no subgraph", "model")
        buffers = model.buffers or []
        codes = model.operatorCodes or []
        for number, sub in enumerate(model.subgraphs):
            self.check_subgraph(sub, number, buffers, codes)

    def check_subgraph(self, sub, number: int, buffers, codes) -> None:
        tensors = sub.tensors or []
        where_sub = f"subgraph {number}" if len(self.model.subgraphs) > 1 else ""
        prefix = f"{where_sub} " if where_sub else ""
        for index, tensor in enumerate(tensors):
            self.check_tensor(tensor, f"{prefix}tensor {index} '{_name(tensor)}'", buffers)

        def check_index(value: int, where: str, optional: bool = False) -> None:
            if not (-1 if optional else 0) <= value < len(tensors):
                self.fail(f"tensor index {value} out of range (the subgraph has {len(tensors)} tensors)", where)

        for role, indices in (("input", sub.inputs), ("output", sub.outputs)):
            for k, value in enumerate(indices if indices is not None else []):
                check_index(int(value), f"{prefix}model {role} {k}")
        # Tensors with a value before the first operator runs: graph inputs, constants, variables.
        written = {int(i) for i in (sub.inputs if sub.inputs is not None else [])}
        written |= {i for i, t in enumerate(tensors) if t.isVariable or self.constant(t, buffers)}
        producer: dict[int, int] = {}
        for op_index, op in enumerate(sub.operators or []):
            if not 0 <= op.opcodeIndex < len(codes):
                self.fail(f"operator code index {op.opcodeIndex} out of range (the model has {len(codes)} codes)",
                          f"{prefix}operator {op_index}")
            opcode = self.opcode(codes[op.opcodeIndex])
            where_op = f"{prefix}operator {op_index} ({opcode})"
            for k, value in enumerate(int(i) for i in (op.inputs if op.inputs is not None else [])):
                check_index(value, f"input {k} of {where_op}", optional=True)
                if value >= 0 and value not in written:
                    self.fail(f"tensor {value} is read before any operator writes it", f"input {k} of {where_op}")
            for k, value in enumerate(int(i) for i in (op.outputs if op.outputs is not None else [])):
                check_index(value, f"output {k} of {where_op}")
                if value in producer or (value in written and not tensors[value].isVariable):
                    first = f"operator {producer[value]}" if value in producer else "the model (input or constant)"
                    self.fail(f"tensor {value} is written a second time (first by {first})", f"output {k} of {where_op}")
                producer[value] = op_index
                written.add(value)
            self.check_options(op, opcode, where_op)
        for k, value in enumerate(sub.outputs if sub.outputs is not None else []):
            if int(value) not in written:
                self.fail(f"tensor {value} is never written", f"{prefix}model output {k}")

    def opcode(self, code) -> str:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        return self.builtin_names.get(builtin, f"BUILTIN_{builtin}")

    def constant(self, tensor, buffers) -> bool:
        return 0 < tensor.buffer < len(buffers) and buffers[tensor.buffer].data is not None \
            and len(buffers[tensor.buffer].data) > 0

    def check_tensor(self, tensor, where: str, buffers) -> None:
        type_name = self.type_names.get(tensor.type)
        if type_name is None:
            self.fail(f"tensor type {tensor.type} is not a TFLite type", where)
        shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
        if len(shape) > MAX_RANK:
            self.fail(f"rank {len(shape)} exceeds {MAX_RANK}", where)
        if any(d < 0 for d in shape):
            self.fail(f"shape {shape} has a negative dimension", where)
        elements = math.prod(shape)
        item = ITEM_SIZES.get(type_name, 1)
        if elements * item > MAX_TENSOR_BYTES:
            self.fail(f"shape {shape} of {type_name} needs {elements * item} bytes", where)
        if not 0 <= tensor.buffer < len(buffers):
            self.fail(f"buffer index {tensor.buffer} out of range (the model has {len(buffers)} buffers)", where)
        buffer = buffers[tensor.buffer]
        if buffer.offset and buffer.offset > 1:
            self.fail("buffer stored outside the flatbuffer (offset/size), which is not supported", where)
        if self.constant(tensor, buffers) and type_name in ITEM_SIZES and len(buffer.data) != elements * item:
            self.fail(f"buffer {tensor.buffer} holds {len(buffer.data)} bytes; shape {shape} of {type_name} "
                      f"needs {elements * item}", where)
        if tensor.quantization is not None:
            self.check_quantization(tensor.quantization, type_name, shape, where)

    def check_quantization(self, q, type_name: str, shape: list[int], where: str) -> None:
        scales = np.asarray(q.scale if q.scale is not None else [], dtype=np.float64)
        zero_points = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], dtype=np.float64)
        if scales.size == 0:
            if zero_points.size:
                self.fail(f"{zero_points.size} zero points but no scale", where)
            return
        if zero_points.size != scales.size:  # TFLM reads a zero point for every scale
            self.fail(f"{scales.size} scales but {zero_points.size} zero points", where)
        bad = np.flatnonzero(~(np.isfinite(scales) & (scales > 0)))
        if bad.size:
            channel = f" channel {bad[0]}" if scales.size > 1 else ""
            self.fail(f"scale {scales[bad[0]]:g} is not a finite positive number", f"{where}{channel}")
        limits = INTEGER_RANGES.get(type_name)
        if limits is not None and zero_points.size:
            out = np.flatnonzero((zero_points < limits[0]) | (zero_points > limits[1]))
            if out.size:
                channel = f" channel {out[0]}" if zero_points.size > 1 else ""
                self.fail(f"zero point {int(zero_points[out[0]])} outside {type_name} range {limits[0]}..{limits[1]}",
                          f"{where}{channel}")
        if scales.size > 1:
            axis = int(q.quantizedDimension)
            if len(shape) == 1:  # a bias: older converters give it its filter's dimension (person_detect)
                axis = 0
            if not 0 <= axis < len(shape):
                self.fail(f"per-channel quantized dimension {axis} is not a dimension of shape {shape}", where)
            if shape[axis] != scales.size:
                self.fail(f"{scales.size} per-channel scales for {shape[axis]} channels (dimension {axis} of "
                          f"{shape})", where)

    def check_options(self, op, opcode: str, where: str) -> None:
        if op.builtinOptions is None:
            return
        carried = self.option_names.get(op.builtinOptionsType, str(op.builtinOptionsType))
        expected = OPTIONS_OF.get(opcode)
        if expected is not None and carried != expected:
            self.fail(f"options table {carried} where {opcode} takes {expected}", where)
        for field, enum in ENUM_OPTIONS.items():
            value = getattr(op.builtinOptions, field, None)
            if value is not None and value not in enum_names(getattr(self.schema, enum)):
                self.fail(f"option {field} = {value} is not a {enum}", where)
        for field in POSITIVE_OPTIONS:
            value = getattr(op.builtinOptions, field, None)
            if value is not None and value < 1:
                self.fail(f"option {field} = {value} must be at least 1", where)


def _name(tensor) -> str:
    name = tensor.name.decode("utf-8", "replace") if isinstance(tensor.name, bytes) else str(tensor.name or "")
    name = re.sub(r"[^ -~]", "?", name)  # the error stays one printable line, whatever the file holds
    return name if len(name) <= 60 else name[:57] + "..."


# Operators whose output has the shape of their first input.
SAME_SHAPE = {"RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "SOFTMAX", "QUANTIZE", "DEQUANTIZE",
              "RSQRT", "LOG_SOFTMAX"}
RESHAPES = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
# Binary operators besides ADD, SUB and MUL whose output has the broadcast shape of both inputs.
BROADCAST_EXTRA = ("MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU")
# Inputs an operator cannot run without (later ones are optional or absent, -1).
REQUIRED_INPUTS = {**{op: 1 for op in SAME_SHAPE | RESHAPES | {"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"}},
                   **{op: 2 for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "ADD", "SUB",
                                       "MUL", "PAD", "PADV2")},
                   **{op: 2 for op in ("SUM", "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN", *BROADCAST_EXTRA)}}


def validate_shapes(graph: Graph, origin: str) -> None:
    """Raise `UserError("<origin>: <what>, <where>")` where an operator's tensors do not fit together.

    TFLite Micro does not resize outputs: an output declared larger than what the
    kernel writes leaves bytes nobody computed, and one declared smaller is overrun.
    Checked for the operators the native runtime lowers (TFLM-only operators are
    TFLM's to check).
    """
    for op in graph.operators:
        required = REQUIRED_INPUTS.get(op.opcode)
        if required is None:
            continue
        where = f"operator {op.index} ({op.opcode})"

        def fail(what: str) -> None:
            raise UserError(f"{origin}: {what}, {where}")

        if len(op.inputs) < required or any(i < 0 for i in op.inputs[:required]) or len(op.outputs) != 1:
            fail(f"{len(op.inputs)} inputs ({op.inputs}) and {len(op.outputs)} outputs; "
                 f"it takes {required} inputs and 1 output")
        inputs = graph.input_tensors(op)
        output = graph.tensors[op.outputs[0]]
        for tensor in [t for t in inputs if t is not None] + [output]:
            if tensor.num_elements == 0:
                fail(f"tensor {tensor.index} has shape {list(tensor.shape)}, with no elements")
        first = inputs[0]
        if op.opcode in SAME_SHAPE and output.shape != first.shape:
            fail(f"output shape {list(output.shape)} differs from input shape {list(first.shape)}")
        elif op.opcode in RESHAPES:
            if output.num_elements != first.num_elements:
                fail(f"output shape {list(output.shape)} holds {output.num_elements} elements, "
                     f"input {list(first.shape)} {first.num_elements}")
            if _quant_params(first) != _quant_params(output):
                fail(f"output quantization {_quant_params(output)} differs from input {_quant_params(first)}; "
                     "a reshape never requantizes")
        elif op.opcode in ("ADD", "SUB", "MUL") + BROADCAST_EXTRA:
            try:
                expected = np.broadcast_shapes(first.shape, inputs[1].shape)
            except ValueError:
                fail(f"input shapes {list(first.shape)} and {list(inputs[1].shape)} do not broadcast")
            if tuple(expected) != output.shape:
                fail(f"output shape {list(output.shape)}; the inputs broadcast to {list(expected)}")
        elif op.opcode == "FULLY_CONNECTED":
            _check_fully_connected(op, inputs, output, fail)
        elif op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
            _check_windowed(op, inputs, output, fail)


def _quant_params(tensor) -> tuple | None:
    q = tensor.quantization
    return None if q is None else (q.scale.tolist(), q.zero_point.tolist())


def _check_fully_connected(op: Operator, inputs, output, fail) -> None:
    weights, bias = inputs[1], (inputs + [None])[2]
    if len(weights.shape) != 2:
        fail(f"weights shape {list(weights.shape)} is not [units, depth]")
    units, depth = weights.shape
    if inputs[0].num_elements % depth:
        fail(f"input of {inputs[0].num_elements} elements is not a whole number of rows of depth {depth}")
    if output.num_elements != inputs[0].num_elements // depth * units:
        fail(f"output shape {list(output.shape)}; {inputs[0].num_elements // depth} rows of {units} units expected")
    if bias is not None and bias.num_elements != units:
        fail(f"bias of {bias.num_elements} values for {units} units")


def _check_windowed(op: Operator, inputs, output, fail) -> None:
    """NHWC batch and channels; the height and width are the lowering's (padding arithmetic)."""
    inp, filt, bias = (inputs + [None, None])[:3]
    for tensor in (inp, output) + ((filt,) if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") else ()):
        if len(tensor.shape) != 4:
            fail(f"tensor {tensor.index} has shape {list(tensor.shape)}; expected 4-D NHWC")
    if output.shape[0] != inp.shape[0]:
        fail(f"output batch {output.shape[0]} differs from input batch {inp.shape[0]}")
    if op.opcode == "CONV_2D":
        channels, per_group = filt.shape[0], filt.shape[3]
        if inp.shape[3] % per_group:
            fail(f"input channels {inp.shape[3]} are not a multiple of the filter's {per_group}")
    elif op.opcode == "DEPTHWISE_CONV_2D":
        channels = filt.shape[3]
        if channels % inp.shape[3]:  # TFLM derives the depth multiplier from this ratio
            fail(f"filter channels {channels} are not a multiple of input channels {inp.shape[3]}")
    else:
        channels = inp.shape[3]
    if output.shape[3] != channels:
        fail(f"output channels {output.shape[3]}; expected {channels}")
    if bias is not None and bias.num_elements != channels:
        fail(f"bias of {bias.num_elements} values for {channels} channels")
