"""MEAN, SUM, REDUCE_MAX and REDUCE_MIN over any constant axes, ARG_MAX and ARG_MIN, int8; MEAN
also int16 (16x8), through the same generic loop in TFLM with an int32 sum and an int16 clamp.

TFLite Micro runs every int8 reduction through one generic loop (reduce_common.cc and
reference/reduce.h): REDUCE_MAX/MIN compare raw codes (it refuses a rescale), SUM
requantizes the offset sum by input_scale / output_scale, and MEAN does the same with
1 / (elements per set) folded into the multiplier by an integer division. Here the axes
are read at generation time and the input shape folded into the five runs of
tp_reduce.h, so the kernel loops over plain counts.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator, Tensor
from . import CStruct, MalformedOperator, Step, constraint, lowers
from .common import (CONSTANT_OPERANDS, INT32_OPERANDS, SAME_QUANTIZATION, is_int16x8, require_int8, require_int16x8,
                     require_per_tensor, rescale_multiplier)

REDUCE_SLOTS = 5  # tp_reduce_dims: outer, reduce_outer, middle, reduce_inner, inner
MAX_SET_SIZE = 1 << 23  # elements summed into one output: the int32 sum and its offset cannot overflow
MAX_SET_SIZE_S16 = 1 << 16  # the same for int16 elements (zero point 0)

_AXES_OPERATORS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN")
REDUCE_NONEMPTY_INPUT = constraint(*_AXES_OPERATORS,
                                   doc="a non-empty input, of rank 1 or more for ARG_MAX and ARG_MIN")
REDUCE_RUNS = constraint("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN",
                         doc="reduced axes that form at most 2 separate runs once size-1 axes are dropped")
REDUCE_SET_SIZE = constraint("MEAN", "SUM",
                             doc=f"at most {MAX_SET_SIZE} int8 elements (int16: {MAX_SET_SIZE_S16}) summed into each "
                                 "output, so that the int32 sum cannot overflow")
ARG_INT32_INDICES = constraint("ARG_MAX", "ARG_MIN", doc="int32 indices, the only ones TFLite Micro's ARG_MAX and "
                                                         "ARG_MIN write (convert with output_type=tf.int32)")


def _constant_axes(graph: Graph, op: Operator) -> np.ndarray:
    """The values of the operator's axis operand (input 1), which must be a constant int32 tensor."""
    axis = graph.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    if axis is None:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has no axis operand; the model is inconsistent")
    if not axis.is_constant:
        raise CONSTANT_OPERANDS.refusal(op, f"takes its axes from tensor {shorten(axis.name)!r}, computed at "
                                               "run time")
    if axis.dtype != "int32":
        raise INT32_OPERANDS.refusal(op, f"has {axis.dtype} axes")
    return np.asarray(axis.data, dtype=np.int64).ravel()


def _resolve_axes(op: Operator, values: np.ndarray, rank: int) -> list[int]:
    """ResolveAxis: negative axes wrapped, duplicates dropped, first occurrence order kept."""
    resolved: list[int] = []
    for value in values.tolist():
        if not -rank <= value < rank:
            raise MalformedOperator(f"{op.opcode} (node {op.index}) has axis {value}, outside a rank-{rank} input")
        axis = value + rank if value < 0 else value
        if axis not in resolved:
            resolved.append(axis)
    return resolved


def fold_reduction(op: Operator, shape: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    """The tp_reduce_dims of a reduction of `shape` over `axes`: size-1 axes dropped, adjacent
    axes of one kind (reduced or kept) merged, a kept run of 1 put first when the first run is
    reduced, unused runs 1. Refused when more than two separate reduced runs are left."""
    runs: list[list] = []  # [size, reduced]
    for dim, size in enumerate(shape):
        if size == 1:
            continue
        reduced = dim in axes
        if runs and runs[-1][1] == reduced:
            runs[-1][0] *= size
        else:
            runs.append([size, reduced])
    if runs and runs[0][1]:
        runs.insert(0, [1, False])
    if len(runs) > REDUCE_SLOTS:
        raise REDUCE_RUNS.refusal(op, f"reduces axes {axes} of shape {list(shape)}, which leaves "
                                      f"{len(runs) // 2} separate runs of reduced axes")
    return tuple(size for size, _ in runs) + (1,) * (REDUCE_SLOTS - len(runs))


def _reduce_operands(graph: Graph, op: Operator) -> tuple[Tensor, Tensor, tuple[int, ...], int]:
    """(input, output, tp_reduce_dims, elements per reduced set), after checking the shapes agree."""
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if op.opcode == "MEAN" and is_int16x8(inp):
        require_int16x8(graph, op, (inp, output))
    else:
        require_int8(graph, op, inp, output)
    require_per_tensor(op, inp, output)
    if inp.num_elements == 0:
        raise REDUCE_NONEMPTY_INPUT.refusal(op, f"has an empty input {list(inp.shape)}")
    axes = _resolve_axes(op, _constant_axes(graph, op), len(inp.shape))
    dims = fold_reduction(op, inp.shape, axes)
    outer, _, middle, _, inner = dims
    if output.num_elements != outer * middle * inner:
        raise MalformedOperator(
            f"{op.opcode} (node {op.index}): reducing {list(inp.shape)} over axes {axes} leaves "
            f"{outer * middle * inner} elements but the output {list(output.shape)} holds {output.num_elements}; "
            "the model is inconsistent")
    count = int(np.prod([inp.shape[a] for a in axes], dtype=np.int64))
    return inp, output, dims, count


def _dims_struct(dims: tuple[int, ...]) -> CStruct:
    return CStruct("tp_reduce_dims", "dims", "{%s}" % ", ".join(map(str, dims)))


def mean_requant(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """TFLM's int8 MEAN rescale: the input/output rescale with 1/count folded into the multiplier
    by an integer division, keeping the shift within range."""
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << fold) // count, shift - fold


@lowers("MEAN", "SUM")
def lower_mean_sum(graph: Graph, op: Operator) -> Step:
    inp, output, dims, count = _reduce_operands(graph, op)
    int16 = is_int16x8(inp)
    most = MAX_SET_SIZE_S16 if int16 else MAX_SET_SIZE
    if count > most:
        raise REDUCE_SET_SIZE.refusal(op, f"sums {count} {inp.dtype} elements into each output")
    # PrepareSimple: QuantizeMultiplier of input_scale / output_scale in double.
    multiplier, shift = rescale_multiplier(op, "input/output", float(np.float32(inp.scale)) /
                                           float(np.float32(output.scale)))
    if op.opcode == "MEAN":
        multiplier, shift = mean_requant(multiplier, shift, count)
    return Step(
        op=op,
        header="tp_reduce.h",
        sources=("tp_reduce_s16.c" if int16 else "tp_reduce_s8.c",),
        structs=[
            CStruct("tp_reduce_sum_params", "params",
                    f"{{{-inp.zero_point * count}, {{{multiplier}, {shift}}}, {output.zero_point}}}"),
            _dims_struct(dims),
        ],
        call=(f"tp_reduce_sum_{'s16' if int16 else 's8'}(&${{p}}params, &${{p}}dims, $t{inp.index}, "
              f"$t{output.index});"),
    )


@lowers("REDUCE_MAX", "REDUCE_MIN")
def lower_reduce_max_min(graph: Graph, op: Operator) -> Step:
    inp, output, dims, _ = _reduce_operands(graph, op)
    # EvalMinMaxHelper refuses (at run time) an int8 reduction that would change quantization.
    if np.float32(inp.scale) != np.float32(output.scale) or inp.zero_point != output.zero_point:
        raise SAME_QUANTIZATION.refusal(op, f"changes quantization (scale {inp.scale:g} -> {output.scale:g}, "
                                                   f"zero point {inp.zero_point} -> {output.zero_point})")
    kernel = "tp_reduce_max_s8" if op.opcode == "REDUCE_MAX" else "tp_reduce_min_s8"
    return Step(
        op=op,
        header="tp_reduce.h",
        sources=("tp_reduce_s8.c",),
        structs=[_dims_struct(dims)],
        call=f"{kernel}(&${{p}}dims, $t{inp.index}, $t{output.index});",
    )


@lowers("ARG_MAX", "ARG_MIN")
def lower_arg_max_min(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp)
    if output.dtype != "int32":
        raise ARG_INT32_INDICES.refusal(op, f"writes {output.dtype} indices to {shorten(output.name)!r}")
    rank = len(inp.shape)
    if rank == 0 or inp.num_elements == 0:
        raise REDUCE_NONEMPTY_INPUT.refusal(op, f"has a scalar or empty input {list(inp.shape)}")
    values = _constant_axes(graph, op)
    if values.size == 0:
        raise MalformedOperator(f"{op.opcode} (node {op.index}) has an empty axis tensor")
    # The reference reads the first axis value only.
    axis = _resolve_axes(op, values[:1], rank)[0]
    outer = int(np.prod(inp.shape[:axis], dtype=np.int64))
    inner = int(np.prod(inp.shape[axis + 1:], dtype=np.int64))
    if output.num_elements != outer * inner:
        raise MalformedOperator(
            f"{op.opcode} (node {op.index}): {list(inp.shape)} along axis {axis} gives {outer * inner} indices but "
            f"the output {list(output.shape)} holds {output.num_elements}; the model is inconsistent")
    kernel = "tp_arg_max_s8" if op.opcode == "ARG_MAX" else "tp_arg_min_s8"
    return Step(
        op=op,
        header="tp_reduce.h",
        sources=("tp_arg_minmax_s8.c",),
        structs=[CStruct("tp_arg_dims", "dims", f"{{{outer}, {inp.shape[axis]}, {inner}}}")],
        call=f"{kernel}(&${{p}}dims, $t{inp.index}, $t{output.index});",
    )
