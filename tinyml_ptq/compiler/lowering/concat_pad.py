"""CONCATENATION, PAD and PADV2 on int8 and int16 (int16x8) tensors: pure data movement."""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CStruct, MalformedOperator, Step, constraint, lowers
from .common import CONSTANT_OPERANDS, dims_initializer, is_int16x8, require_int8, require_int16x8

UNFUSED_CONCATENATION = constraint("CONCATENATION", doc="fused activation NONE (as TFLite Micro)")
# TFLite Micro's PAD and PADV2 are one kernel: either takes the optional fill value operand.
PAD_FILL_VALUE_TYPE = constraint("PAD", "PADV2",
                                 doc="a fill value of the input's type (TFLite Micro's Prepare refuses any other; the "
                                     "16x8 converter leaves PADV2's float32)")
PAD_RANK = constraint("PAD", "PADV2", doc="an input of at most 4 dimensions")
PAD_NONNEGATIVE_PADDINGS = constraint("PAD", "PADV2", doc="non-negative paddings")


def _element_size(graph: Graph, op: Operator, *tensors: Tensor | None) -> int:
    """2 for an int16x8 operator (int16 throughout, zero points 0, as TFLite Micro's int16
    CONCATENATION requires and its int16 PAD assumes), else 1 for int8."""
    if any(is_int16x8(t) for t in tensors):
        require_int16x8(graph, op, tensors)
        return 2
    require_int8(graph, op, *tensors)
    return 1


@lowers("CONCATENATION")
def lower_concatenation(graph: Graph, op: Operator) -> Step:
    inputs = graph.input_tensors(op)
    output = graph.tensors[op.outputs[0]]
    # int16 inputs of another scale than the output's are copied as they are: TFLite Micro's int16
    # path checks only the zero points and copies too (int8 it refuses; the converter never
    # makes either, it inserts QUANTIZE operators).
    item_size = _element_size(graph, op, *inputs, output)
    if op.options.get("fused_activation_function", 0) != 0:
        raise UNFUSED_CONCATENATION.refusal(
            op, f"has fused activation {quant_math.FUSED_ACTIVATIONS.get(op.options['fused_activation_function'])}")
    rank = len(output.shape)
    axis = op.options.get("axis", 0)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < max(rank, 1) or any(len(t.shape) != rank for t in inputs):
        raise MalformedOperator(f"node {op.index}: CONCATENATION axis {op.options.get('axis')} does not fit shapes "
                         f"{[t.shape for t in inputs]} -> {output.shape}")
    outer_size = int(np.prod(output.shape[:axis], dtype=np.int64))
    copies = [(t.index, int(np.prod(t.shape[axis:], dtype=np.int64))) for t in inputs]
    if outer_size * sum(size for _, size in copies) != output.num_elements:
        raise MalformedOperator(f"node {op.index}: CONCATENATION inputs {[t.shape for t in inputs]} do not make {output.shape}")
    return concatenation_step(op, copies, outer_size, output.index, item_size)


def concatenation_step(op: Operator, copies: list[tuple[int, int]], outer_size: int, output: int,
                       element_size: int = 1) -> Step:
    """Per outer step, each input's next block ((tensor, elements per block) in `copies`) in turn."""
    initializer = "{" + ", ".join(f"{{$t{index}, {size * element_size}}}" for index, size in copies) + "}"
    return Step(
        op=op,
        header="tp_concat_pad.h",
        sources=("tp_concatenation.c",),
        structs=[CStruct("tp_concat_input", f"inputs[{len(copies)}]", initializer)],
        call=f"tp_concatenation(${{p}}inputs, {len(copies)}, {outer_size}, $t{output});",
    )


@lowers("PAD", "PADV2")
def lower_pad(graph: Graph, op: Operator) -> Step:
    inp, paddings = graph.input_tensors(op)[:2]
    constant_value = graph.input_tensors(op)[2] if len(op.inputs) > 2 else None
    output = graph.tensors[op.outputs[0]]
    if constant_value is not None and constant_value.dtype != inp.dtype:
        # The 16x8 converter leaves PADV2's fill value float32; TFLite Micro's Prepare refuses that.
        raise PAD_FILL_VALUE_TYPE.refusal(op, f"has a {constant_value.dtype} fill value for its {inp.dtype} input")
    item_size = _element_size(graph, op, inp, output, constant_value)
    if paddings is None:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has no paddings operand")
    if not paddings.is_constant:
        raise CONSTANT_OPERANDS.refusal(op, f"has computed paddings (tensor {shorten(paddings.name)!r})")
    rank = len(inp.shape)
    if rank > 4:
        raise PAD_RANK.refusal(op, f"pads a rank-{rank} tensor")
    pads = np.asarray(paddings.data, dtype=np.int64).reshape(rank, 2)
    if (pads < 0).any():
        raise PAD_NONNEGATIVE_PADDINGS.refusal(op, f"has negative paddings {pads.tolist()}")
    if tuple(int(d) for d in np.asarray(inp.shape) + pads.sum(axis=1)) != tuple(output.shape):
        raise MalformedOperator(f"node {op.index}: {op.opcode} of {inp.shape} by {pads.tolist()} does not give {output.shape}")
    if constant_value is not None:
        if not constant_value.is_constant:
            raise CONSTANT_OPERANDS.refusal(op, f"has a computed fill value (tensor {shorten(constant_value.name)!r})")
        # The fill value's raw int8 or int16 is used as is, whatever its quantization.
        pad_value = int(np.asarray(constant_value.data).ravel()[0])
    else:
        pad_value = output.zero_point  # int16: TFLite Micro fills 0, the zero point require_int16x8 checked
    # Missing leading dimensions get no padding (dims_initializer would fill 1s).
    before = "{%d, %d, %d, %d}" % ((0,) * (4 - rank) + tuple(int(p) for p in pads[:, 0]))
    after = "{%d, %d, %d, %d}" % ((0,) * (4 - rank) + tuple(int(p) for p in pads[:, 1]))
    return Step(
        op=op,
        header="tp_concat_pad.h",
        sources=("tp_pad.c",),
        structs=[
            CStruct("tp_pad_params", "params",
                    f"{{{before}, {after}, {pad_value}, {item_size}}}"),
            CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
        ],
        call=f"tp_pad(&${{p}}params, &${{p}}input_dims, $t{inp.index}, $t{output.index});",
    )
