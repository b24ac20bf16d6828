"""The scalar kernel set (kernels/scalar, tp_scalar.h): CONV_2D, DEPTHWISE_CONV_2D (depth
multiplier 1), FULLY_CONNECTED and same-shape ADD/SUB for Cortex-M cores without the DSP extension
(M0, M0+, M3), portable C (and one Armv6-M assembly loop) bit-exact with the reference kernels.
Operators (or cases) without a lowering here run on the reference kernels. The steps offer no
in-place variant: where the reference kernels would share a buffer, the arena may grow.

The kernels multiply one signed byte by unsigned ones: inputs gathered as x + 128, fully connected
weights stored as w + 128. What that adds is a constant per output channel (the convolutions fold
-128 * sum(w) into their effective bias) or per input row (the fully connected kernel subtracts
128 * sum(x) itself).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator, Tensor
from . import CArray, Step, lowers
from .common import effective_bias, is_int16x8
from .conv import DepthwiseGeometry, lower_conv2d, lower_depthwise_conv2d
from .elementwise import lower_add_sub_dsp
from .fully_connected import lower_fully_connected


def _wrap32(values: np.ndarray) -> np.ndarray:
    return ((np.asarray(values, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def unsigned_input_bias(filter_rows: np.ndarray, bias: Tensor | None, input_offset: int) -> np.ndarray:
    """Per output channel bias + input_offset * sum(w) - 128 * sum(w): the kernels sum (x + 128) * w."""
    rows = np.asarray(filter_rows, dtype=np.int64).reshape(len(filter_rows), -1)
    folded = effective_bias(rows, bias.data if bias is not None else None, input_offset).astype(np.int64)
    return _wrap32(folded - 128 * rows.sum(axis=1))


def scalar_short_form(filter_rows: np.ndarray, bias: Tensor | None, input_offset: int, output_offset: int,
                      shifts: np.ndarray) -> np.ndarray:
    """Per output channel 1 where tp_scalar_store's short requantization is exact (tp_scalar.h):
    shift at most 0 and |accumulator| below 2^29, with the floor shift's sum within 32 bits. The
    bound on |accumulator| is the reference's (int8 inputs, before wrapping), as for
    dsp_channel_words; the high product is at most |accumulator| + 1."""
    rows = np.asarray(filter_rows, dtype=np.int64).reshape(len(filter_rows), -1)
    bias_values = np.zeros(len(rows), dtype=np.int64) if bias is None else bias.data.astype(np.int64).reshape(-1)
    widest_input = max(abs(-128 + input_offset), abs(127 + input_offset))
    bound = np.abs(rows).sum(axis=1) * widest_input + np.abs(bias_values)
    right = -np.broadcast_to(np.asarray(shifts, dtype=np.int64), (len(rows),))
    short = np.zeros(len(rows), dtype=np.uint8)
    for c in range(len(rows)):
        if 0 <= right[c] <= 31:
            rounding = (1 << int(right[c]) >> 1) + output_offset * (1 << int(right[c]))
            short[c] = int(bound[c]) < 1 << 29 and int(bound[c]) + 2 + abs(rounding) < 1 << 31
    return short


def _scalar_step(base: Step, source: str, call: str, arrays: list[CArray], scratch_bytes: int = 0) -> Step:
    """The reference step's data with the scalar kernel's call (tp_scalar_dot4 does the products)."""
    return Step(op=base.op, header="tp_scalar.h", sources=(source, "tp_scalar_dot4.c", "tp_scalar_dot4_armv6m.S"),
                kernel_dir="scalar", arrays=base.arrays + arrays, structs=base.structs, call=call,
                scratch_bytes=scratch_bytes)


def _short_form(base: Step, filter_rows: np.ndarray, bias: Tensor | None, inp: Tensor, output: Tensor) -> CArray:
    """The short-form flags from the reference step's per-channel shifts."""
    shifts = next(array.values for array in base.arrays if array.name == "shift")
    return CArray("short_form", "uint8_t",
                  scalar_short_form(filter_rows, bias, -inp.zero_point, output.zero_point, shifts))


def _constant_weights(filt: Tensor, bias: Tensor | None) -> bool:
    return filt.is_constant and (bias is None or bias.is_constant)


@lowers("CONV_2D", kernels="scalar")
def lower_conv2d_scalar(graph: Graph, op: Operator) -> Step:
    base = lower_conv2d(graph, op)
    inp, filt, bias = (graph.input_tensors(op) + [None])[:3]
    output = graph.tensors[op.outputs[0]]
    if is_int16x8(inp) or filt.shape[3] != inp.shape[3] or not _constant_weights(filt, bias):
        return base  # 16x8, grouped convolutions and run-time weights stay on the reference kernel
    k = filt.shape[1] * filt.shape[2] * filt.shape[3]
    return _scalar_step(
        base, "tp_conv2d_s8_scalar.c",
        call=(f"tp_conv2d_s8_scalar(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, $t{filt.index}, ${{p}}effective_bias, ${{p}}short_form, &${{p}}output_dims, "
              f"$t{output.index}, (uint8_t *)$scratch);"),
        arrays=[CArray("effective_bias", "int32_t", unsigned_input_bias(filt.data, bias, -inp.zero_point)),
                _short_form(base, filt.data, bias, inp, output)],
        scratch_bytes=4 * k)  # four interleaved columns


@lowers("DEPTHWISE_CONV_2D", kernels="scalar")
def lower_depthwise_conv2d_scalar(graph: Graph, op: Operator) -> Step:
    base = lower_depthwise_conv2d(graph, op)
    inp, filt, bias = (graph.input_tensors(op) + [None])[:3]
    output = graph.tensors[op.outputs[0]]
    if is_int16x8(inp) or op.options.get("depth_multiplier", 1) != 1 or not _constant_weights(filt, bias):
        return base  # 16x8, depth multipliers and run-time weights stay on the reference kernel
    g = DepthwiseGeometry.of(op, inp, filt, output)
    # The plane: every row and column a window reads.
    plane_rows = (g.out_rows - 1) * g.stride[0] + (g.k_rows - 1) * g.dilation[0] + 1
    plane_cols = (g.out_cols - 1) * g.stride[1] + (g.k_cols - 1) * g.dilation[1] + 1
    per_channel = np.moveaxis(filt.data.reshape(filt.shape[1:]), 2, 0)  # [c][kh][kw], as the kernel reads it
    return Step(
        op=op, header="tp_scalar.h", kernel_dir="scalar",
        sources=("tp_depthwise_conv2d_s8_scalar.c", "tp_scalar_dot4.c", "tp_scalar_dot4_armv6m.S",
                 "tp_scalar_dw3x3.c", "tp_scalar_dw3x3_armv6m.S"),
        arrays=base.arrays + [CArray("effective_bias", "int32_t",
                                     unsigned_input_bias(per_channel, bias, -inp.zero_point)),
                              CArray("packed_filter", "int8_t", per_channel.reshape(-1)),
                              _short_form(base, per_channel, bias, inp, output)],
        structs=base.structs,
        call=(f"tp_depthwise_conv2d_s8_scalar(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, ${{p}}packed_filter, ${{p}}effective_bias, ${{p}}short_form, &${{p}}output_dims, "
              f"$t{output.index}, {plane_rows}, {plane_cols}, (uint8_t *)$scratch);"),
        scratch_bytes=plane_rows * plane_cols + 4 * g.k_rows * g.k_cols)  # the plane, four windows


def pack_scalar_fully_connected_filter(weights: np.ndarray) -> np.ndarray:
    """An [output_depth][accum_depth] filter as tp_fully_connected_s8_scalar reads it: w + 128, per
    block of four rows for each input the four rows' bytes, then the rows past the last whole
    block row by row. The same bytes reordered."""
    rows, depth = weights.shape
    blocked = rows - rows % 4
    unsigned = np.asarray(weights, dtype=np.int64) + 128
    blocks = unsigned[:blocked].reshape(-1, 4, depth).transpose(0, 2, 1)
    return np.concatenate([blocks.reshape(-1), unsigned[blocked:].reshape(-1)]).astype(np.uint8)


@lowers("FULLY_CONNECTED", kernels="scalar")
def lower_fully_connected_scalar(graph: Graph, op: Operator) -> Step:
    base = lower_fully_connected(graph, op)
    inp, weights, bias = (graph.input_tensors(op) + [None])[:3]
    if is_int16x8(inp) or weights.zero_point != 0 or not _constant_weights(weights, bias):
        return base  # the scalar kernel has no filter offset
    output = graph.tensors[op.outputs[0]]
    output_depth, accum_depth = weights.shape
    bias_values = effective_bias(weights.data, bias.data if bias is not None else None, -inp.zero_point)
    return _scalar_step(
        base, "tp_fully_connected_s8_scalar.c",
        call=(f"tp_fully_connected_s8_scalar(&${{p}}params, &${{p}}quant, {inp.num_elements // accum_depth}, "
              f"{accum_depth}, {output_depth}, $t{inp.index}, ${{p}}packed_filter, ${{p}}effective_bias, "
              f"${{p}}short_form, $t{output.index});"),
        arrays=[CArray("effective_bias", "int32_t", bias_values), _short_form(base, weights.data, bias, inp, output),
                CArray("packed_filter", "uint8_t", pack_scalar_fully_connected_filter(weights.data))])


@lowers("ADD", "SUB", kernels="scalar")
def lower_add_sub_scalar(graph: Graph, op: Operator) -> Step:
    """Same-shape int8 ADD and SUB on the DSP set's tables (each input's rescaling by value),
    where that set takes them, with the output requantized by tp_scalar_requantize."""
    dsp = lower_add_sub_dsp(graph, op)
    if dsp.kernel_dir != "dsp":
        return dsp  # the reference kernel: 16x8, broadcasting, or tables the DSP set refuses
    scaled = next(array for array in dsp.arrays if array.name == "scaled")
    output = graph.tensors[op.outputs[0]]
    input1, input2 = op.inputs[:2]
    return Step(op=op, header="tp_scalar.h", sources=("tp_add_s8_scalar.c",), kernel_dir="scalar",
                structs=dsp.structs, arrays=[scaled],
                call=(f"tp_add_s8_scalar(&${{p}}params, ${{p}}scaled, {output.num_elements}, "
                      f"$t{input1}, $t{input2}, $t{output.index});"),
                inplace=dsp.inplace)
