"""BATCH_MATMUL, int8 x int8 -> int8, broadcast over batch dimensions (ranks 2 to 5).

TFLite Micro's kernel (micro/kernels/batch_matmul.cc over reference/batch_matmul.h)
takes two int8 operands of rank 2 to 5 whose batch dimensions broadcast, transposes
the left-hand side when adj_x is set and the right-hand side when adj_y is not (the
reference multiplies rows by rows), and sums (lhs - lhs_zp) * (rhs - rhs_zp) per
output in int32 before one requantization by lhs_scale * rhs_scale / output_scale
(GetQuantizedConvolutionMultipler without a bias) and a clamp to int8 (no fused
activation). It refuses other types (int16 runs on --runtime tflm), ranks outside
2..5, batch dimensions that do not broadcast, depths that differ and an output of
another size. Per-channel operands would be read by their first scale alone; they
are refused.

Here adj_x / adj_y become element steps and the batch dimensions are folded at
generation time (tp_batch_matmul.h), so the kernel reads both operands where they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import require_int8, require_per_tensor, rescale_multiplier

f32 = np.float32
BATCH_DIMS = 3  # TP_BATCH_MATMUL_BATCH_DIMS
MIN_RANK, MAX_RANK = 2, 5  # TFLM's Prepare

OPERAND_RANK = constraint("BATCH_MATMUL", doc=f"operands of rank {MIN_RANK} to {MAX_RANK} (as TFLite Micro takes them)")
NONEMPTY_OPERANDS = constraint("BATCH_MATMUL", doc="operands with at least one element")


def fold_batches(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...], rows: int, depth: int, cols: int,
                 adj_x: bool) -> tuple[list[tuple[int, int, int]], int]:
    """The batch loops of a product of lhs_shape by rhs_shape, as (size, lhs stride, rhs stride)
    in elements, outermost first, and the rows per matrix: operands extended to one rank with
    leading 1s, size-1 dimensions dropped, neighbours merged where both operands step over the
    inner one as over the outer, and the innermost batch folded into the rows where the
    right-hand side broadcasts over it and the left-hand side's matrices follow one another
    row-major (without adj_x): the output's rows of such a batch are consecutive as well."""
    rank = max(len(lhs_shape), len(rhs_shape))
    lhs = (1,) * (rank - len(lhs_shape)) + tuple(lhs_shape)
    rhs = (1,) * (rank - len(rhs_shape)) + tuple(rhs_shape)
    loops: list[tuple[int, int, int]] = []
    for axis in range(rank - 2):
        size = max(lhs[axis], rhs[axis])
        if size == 1:
            continue
        lhs_stride = 0 if lhs[axis] == 1 else int(np.prod(lhs[axis + 1:], dtype=np.int64))
        rhs_stride = 0 if rhs[axis] == 1 else int(np.prod(rhs[axis + 1:], dtype=np.int64))
        if loops and loops[-1][1] == lhs_stride * size and loops[-1][2] == rhs_stride * size:
            loops[-1] = (loops[-1][0] * size, lhs_stride, rhs_stride)
        else:
            loops.append((size, lhs_stride, rhs_stride))
    while loops and not adj_x and loops[-1][2] == 0 and loops[-1][1] == rows * depth:
        rows *= loops.pop()[0]
    return loops, rows


def _operands(graph: Graph, op: Operator) -> tuple[Tensor, Tensor, Tensor]:
    inputs = graph.input_tensors(op)
    if len(inputs) != 2 or any(t is None for t in inputs) or len(op.outputs) != 1:
        raise MalformedOperator(f"node {op.index}: BATCH_MATMUL has inputs {op.inputs} and outputs {op.outputs}; "
                                "it takes 2 inputs and 1 output")
    lhs, rhs = inputs
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, lhs, rhs, output)
    require_per_tensor(op, lhs, rhs, output)
    for tensor in (lhs, rhs):
        if not MIN_RANK <= len(tensor.shape) <= MAX_RANK:
            raise OPERAND_RANK.refusal(op, f"has a rank-{len(tensor.shape)} operand {list(tensor.shape)}")
    return lhs, rhs, output


@dataclass(frozen=True)
class MatmulLayout:
    """What tp_batch_matmul_dims holds: the batch loops (BATCH_DIMS of them, outermost first, as
    (size, lhs stride, rhs stride)), the folded rows, the columns, the depth and the element
    steps of both operands' matrices."""

    loops: tuple[tuple[int, int, int], ...]
    rows: int
    cols: int
    depth: int
    lhs_row_step: int
    lhs_depth_step: int
    rhs_depth_step: int
    rhs_col_step: int

    def initializer(self) -> str:
        sizes, lhs_strides, rhs_strides = (", ".join(str(loop[i]) for loop in self.loops) for i in range(3))
        return (f"{{{{{sizes}}}, {{{lhs_strides}}}, {{{rhs_strides}}}, {self.rows}, {self.cols}, {self.depth}, "
                f"{self.lhs_row_step}, {self.lhs_depth_step}, {self.rhs_depth_step}, {self.rhs_col_step}}}")


def matmul_layout(op: Operator, lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...], adj_x: bool,
                  adj_y: bool) -> tuple[MatmulLayout, list[int]]:
    """The kernel's layout of a product of lhs_shape by rhs_shape, and the output shape TFLM gives
    it; MalformedOperator where TFLM's Prepare fails (batches that do not broadcast, depths that
    differ)."""
    rank = max(len(lhs_shape), len(rhs_shape))
    lhs_ext = (1,) * (rank - len(lhs_shape)) + tuple(lhs_shape)
    rhs_ext = (1,) * (rank - len(rhs_shape)) + tuple(rhs_shape)
    batch = []
    for a, b in zip(lhs_ext[:-2], rhs_ext[:-2]):
        if a != b and 1 not in (a, b):
            raise MalformedOperator(f"node {op.index}: BATCH_MATMUL cannot broadcast the batch dimensions of "
                                    f"{list(lhs_shape)} and {list(rhs_shape)}")
        batch.append(max(a, b))
    rows, lhs_depth = (lhs_ext[-1], lhs_ext[-2]) if adj_x else (lhs_ext[-2], lhs_ext[-1])
    cols, rhs_depth = (rhs_ext[-2], rhs_ext[-1]) if adj_y else (rhs_ext[-1], rhs_ext[-2])
    if lhs_depth != rhs_depth:
        raise MalformedOperator(
            f"node {op.index}: BATCH_MATMUL multiplies {list(lhs_shape)}{' (adj_x)' if adj_x else ''} by "
            f"{list(rhs_shape)}{' (adj_y)' if adj_y else ''}: depths {lhs_depth} and {rhs_depth} differ")
    depth = lhs_depth
    loops, folded_rows = fold_batches(lhs_shape, rhs_shape, rows, depth, cols, adj_x)
    layout = MatmulLayout(
        loops=tuple([(1, 0, 0)] * (BATCH_DIMS - len(loops)) + loops), rows=folded_rows, cols=cols, depth=depth,
        lhs_row_step=1 if adj_x else depth, lhs_depth_step=rows if adj_x else 1,
        rhs_depth_step=1 if adj_y else cols, rhs_col_step=depth if adj_y else 1)
    return layout, [*batch, rows, cols]


@lowers("BATCH_MATMUL")
def lower_batch_matmul(graph: Graph, op: Operator) -> Step:
    lhs, rhs, output = _operands(graph, op)
    adj_x, adj_y = bool(op.options.get("adj_x", False)), bool(op.options.get("adj_y", False))
    layout, expected = matmul_layout(op, lhs.shape, rhs.shape, adj_x, adj_y)
    # TFLM writes its own output shape over the model's, which may not have a lower rank or another size.
    if len(output.shape) < len(expected) or output.num_elements != int(np.prod(expected, dtype=np.int64)):
        raise MalformedOperator(f"node {op.index}: BATCH_MATMUL output shape {list(output.shape)}; the operands "
                                f"give {expected}")
    if lhs.num_elements == 0 or rhs.num_elements == 0:
        raise NONEMPTY_OPERANDS.refusal(op, f"has an empty operand ({list(lhs.shape)} by {list(rhs.shape)})")
    multiplier, shift = _requant(op, lhs, rhs, output)
    return Step(
        op=op,
        header="tp_batch_matmul.h",
        sources=("tp_batch_matmul_s8.c",),
        structs=[_params(lhs, rhs, output, multiplier, shift), CStruct("tp_batch_matmul_dims", "dims",
                                                                       layout.initializer())],
        call=f"tp_batch_matmul_s8(&${{p}}params, &${{p}}dims, $t{lhs.index}, $t{rhs.index}, $t{output.index});",
    )


def _requant(op: Operator, lhs: Tensor, rhs: Tensor, output: Tensor) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler without a bias, then QuantizeMultiplier: the scales'
    product and its ratio to the output scale in double. (The source text of some TFLM trees
    multiplies the two float scales in float first; the tflite_micro interpreter, our oracle,
    widens each to double, and tests/ops/test_batch_matmul.py pins that on rounding ties.)"""
    real = float(f32(lhs.scale)) * float(f32(rhs.scale)) / float(f32(output.scale))
    return rescale_multiplier(op, "output", real)


def _params(lhs: Tensor, rhs: Tensor, output: Tensor, multiplier: int, shift: int) -> CStruct:
    return CStruct("tp_batch_matmul_params", "params",
                   f"{{{-lhs.zero_point}, {-rhs.zero_point}, {output.zero_point}, {{{multiplier}, {shift}}}}}")


DSP_SCRATCH_BYTES = 4096  # at most, for the widened columns and rows; beyond, the reference kernel


@lowers("BATCH_MATMUL", kernels="dsp")
def lower_batch_matmul_dsp(graph: Graph, op: Operator) -> Step:
    """tp_batch_matmul_s8_dsp over the reference's layout: every column widened at once where
    the scratch allows, else blocks of columns (an even count); the reference kernel where even
    two columns and two rows of the depth exceed DSP_SCRATCH_BYTES."""
    base = lower_batch_matmul(graph, op)
    lhs, rhs, output = _operands(graph, op)
    layout, _ = matmul_layout(op, lhs.shape, rhs.shape, bool(op.options.get("adj_x", False)),
                              bool(op.options.get("adj_y", False)))
    column_bytes = 4 * ((layout.depth + 1) // 2)
    fits = DSP_SCRATCH_BYTES // column_bytes - 2
    if fits < 2:
        return base
    col_block = layout.cols if fits >= layout.cols else fits - fits % 2
    multiplier, shift = _requant(op, lhs, rhs, output)
    words = short_output_words(lhs.zero_point, rhs.zero_point, output.zero_point, layout.depth, multiplier, shift)
    return Step(
        op=op, header="tp_dsp_batch_matmul.h", sources=("tp_batch_matmul_s8_dsp.c",), kernel_dir="dsp",
        arrays=[CArray("output_words", "int32_t", words)], structs=base.structs,
        scratch_bytes=column_bytes * (col_block + 2),
        call=(f"tp_batch_matmul_s8_dsp(&${{p}}params, ${{p}}output_words, &${{p}}dims, {col_block}, $t{lhs.index}, "
              f"$t{rhs.index}, $t{output.index}, (int8_t *)$scratch);"),
    )


def short_output_words(lhs_zero_point: int, rhs_zero_point: int, output_zero_point: int, depth: int,
                       multiplier: int, shift: int) -> np.ndarray:
    """left + 1, multiplier, rounding, right of tp_dsp.h's short requantization, as
    dsp_channel_words proves it for a convolution: a right shift of 1 or more, and for the
    widest accumulator any int8 operands give (depth * the widest offset values of both)
    |acc| < 2^30 and |SMMULR(acc << 1, multiplier)| + 1 + |rounding| < 2^31; else all 0."""
    widest = [max(abs(-128 - zp), abs(127 - zp)) for zp in (lhs_zero_point, rhs_zero_point)]
    bound = depth * widest[0] * widest[1]
    right = -shift
    if right >= 1:
        rounding = (1 << (right - 1)) + output_zero_point * (1 << right)
        if bound < 1 << 30 and bound + 2 + abs(rounding) < 1 << 31:
            return np.array([1, multiplier, rounding, right], dtype=np.int32)
    return np.zeros(4, dtype=np.int32)
