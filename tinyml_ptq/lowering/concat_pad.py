"""CONCATENATION, PAD and PADV2 on int8 tensors: pure data movement."""

from __future__ import annotations

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator
from . import CStruct, MalformedOperator, Step, UnsupportedOperator, lowers
from .common import dims_initializer, require_int8


@lowers("CONCATENATION")
def lower_concatenation(graph: Graph, op: Operator) -> Step:
    inputs = graph.input_tensors(op)
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, *inputs, output)
    if op.options.get("fused_activation_function", 0) != 0:
        raise UnsupportedOperator(
            f"CONCATENATION (node {op.index}) has fused activation "
            f"{quant_math.FUSED_ACTIVATIONS.get(op.options['fused_activation_function'])}; TFLite Micro supports only NONE")
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
    return concatenation_step(op, copies, outer_size, output.index)


def concatenation_step(op: Operator, copies: list[tuple[int, int]], outer_size: int, output: int) -> Step:
    """Per outer step, each input's next block ((tensor, block size) in `copies`) in turn."""
    initializer = "{" + ", ".join(f"{{$t{index}, {size}}}" for index, size in copies) + "}"
    return Step(
        op=op,
        header="tp_concat_pad.h",
        sources=("tp_concatenation_s8.c",),
        structs=[CStruct("tp_concat_input", f"inputs[{len(copies)}]", initializer)],
        call=f"tp_concatenation_s8(${{p}}inputs, {len(copies)}, {outer_size}, $t{output});",
    )


@lowers("PAD", "PADV2")
def lower_pad(graph: Graph, op: Operator) -> Step:
    inp, paddings = graph.input_tensors(op)[:2]
    constant_value = graph.input_tensors(op)[2] if len(op.inputs) > 2 else None
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output, constant_value)
    if paddings is None or not paddings.is_constant:
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) has computed paddings; only constant paddings are supported")
    rank = len(inp.shape)
    if rank > 4:
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) pads a rank-{rank} tensor; at most 4 dimensions are supported")
    pads = np.asarray(paddings.data, dtype=np.int64).reshape(rank, 2)
    if (pads < 0).any():
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) has negative paddings {pads.tolist()}")
    if tuple(int(d) for d in np.asarray(inp.shape) + pads.sum(axis=1)) != tuple(output.shape):
        raise MalformedOperator(f"node {op.index}: {op.opcode} of {inp.shape} by {pads.tolist()} does not give {output.shape}")
    if constant_value is not None:
        if not constant_value.is_constant:
            raise UnsupportedOperator(f"PADV2 (node {op.index}) has a computed fill value; only constants are supported")
        # The fill value's raw int8 is used as is, whatever its quantization.
        pad_value = int(np.asarray(constant_value.data).ravel()[0])
    else:
        pad_value = output.zero_point
    # Missing leading dimensions get no padding (dims_initializer would fill 1s).
    before = "{%d, %d, %d, %d}" % ((0,) * (4 - rank) + tuple(int(p) for p in pads[:, 0]))
    after = "{%d, %d, %d, %d}" % ((0,) * (4 - rank) + tuple(int(p) for p in pads[:, 1]))
    return Step(
        op=op,
        header="tp_concat_pad.h",
        sources=("tp_pad_s8.c",),
        structs=[
            CStruct("tp_pad_params", "params",
                    f"{{{before}, {after}, {pad_value}}}"),
            CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
        ],
        call=f"tp_pad_s8(&${{p}}params, &${{p}}input_dims, $t{inp.index}, $t{output.index});",
    )
