"""CONV_2D and FULLY_CONNECTED on the Helium (MVE) kernels: one int8 matrix kernel under both
(firmware/runtime/include/tp_helium.h), fed a packed filter and per-group output words.

What the kernels cannot take (grouped convolutions, run-time weights, 16x8, FC weights with a
zero point) goes to the DSP lowering, which itself falls back to the reference one.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from . import CArray, CStruct, InPlace, Step, lowers
from .common import dims_initializer, effective_bias, fused_activation, is_int16x8, per_channel_requant
from .conv import check_conv_tensors, conv_geometry, conv_params_initializer, inplace_rows, lower_conv2d_dsp
from .fully_connected import lower_fully_connected_dsp

SOURCES = ("tp_helium_gemm_s8.c", "tp_helium_gemm_s8_groups.S")
CHUNK = 16  # inputs per VMLADAVA
GROUP = 4  # rows per pass of the matrix kernel


def pack_helium_filter(rows: np.ndarray) -> np.ndarray:
    """An [out][k] int8 filter as tp_helium_gemm_s8 reads it (tp_helium.h): rows zero-padded to
    whole groups of four and k to whole chunks of 16; per group, per chunk, the four rows' 16
    weights one after another."""
    rows = np.asarray(rows, dtype=np.int8).reshape(len(rows), -1)
    count, k = rows.shape
    padded = np.zeros((-(-count // GROUP) * GROUP, -(-k // CHUNK) * CHUNK), dtype=np.int8)
    padded[:count, :k] = rows
    groups = padded.reshape(len(padded) // GROUP, GROUP, -1, CHUNK).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(groups).reshape(-1)


def helium_words(bias: np.ndarray, multipliers: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The kernels' output words (tp_helium.h): a header of four, the first 1 when every row shifts
    right (the short requantization), then per group of four rows -right shift, effective bias,
    left shift, multiplier, four lanes each; the padding rows all zeros."""
    count = len(bias)
    lanes = np.zeros((4, -(-count // GROUP) * GROUP), dtype=np.int64)
    shifts = np.asarray(shifts, dtype=np.int64)
    lanes[:, :count] = [np.minimum(shifts, 0), bias, np.maximum(shifts, 0), multipliers]
    header = [int((shifts < 0).all()), 0, 0, 0]
    return np.concatenate([header, lanes.reshape(4, -1, GROUP).transpose(1, 0, 2).reshape(-1)]).astype(np.int32)


@lowers("CONV_2D", kernels="helium")
def lower_conv2d_helium(graph: Graph, op: Operator) -> Step:
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return lower_conv2d_dsp(graph, op)  # the reference 16x8 kernel
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=0)
    if filt.shape[3] != inp.shape[3] or not filt.is_constant or (bias is not None and not bias.is_constant):
        return lower_conv2d_dsp(graph, op)  # grouped convolutions and run-time weights
    out_c = output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, out_c)
    rows = filt.data.reshape(out_c, -1)
    words = helium_words(effective_bias(rows, bias.data if bias is not None else None, -inp.zero_point),
                         multipliers, shifts)
    k = rows.shape[1]
    # A 1x1 filter reads its columns from the input; any other gathers two, in whole chunks.
    pointwise = filt.shape[1] == filt.shape[2] == 1
    scratch_bytes = 0 if pointwise else 2 * -(-k // CHUNK) * CHUNK
    args = "&${p}params, &${p}input_dims, &${p}filter_dims, ${p}packed_filter, ${p}words, &${p}output_dims"
    return Step(
        op=op, header="tp_helium.h", sources=("tp_conv2d_s8_helium.c", *SOURCES), kernel_dir="helium",
        arrays=[CArray("packed_filter", "int8_t", pack_helium_filter(rows)), CArray("words", "int32_t", words)],
        structs=[CStruct("tp_conv_params", "params", conv_params_initializer(op, inp, filt, output)),
                 CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
                 CStruct("tp_dims", "filter_dims", dims_initializer(filt.shape)),
                 CStruct("tp_dims", "output_dims", dims_initializer(output.shape))],
        call=(f"tp_conv2d_s8_helium(&${{p}}params, &${{p}}input_dims, $t{inp.index}, &${{p}}filter_dims, "
              f"${{p}}packed_filter, ${{p}}words, &${{p}}output_dims, $t{output.index}, "
              f"{'(int8_t *)$scratch' if scratch_bytes else 'NULL'});"),
        scratch_bytes=scratch_bytes,
        inplace=(_pointwise_inplace(inp, output, args)
                 if pointwise and conv_geometry(op, inp, filt, output)[0] == (1, 1)
                 else _rows_inplace(op, inp, filt, output, args, scratch_bytes)),
    )


def _rows_inplace(op: Operator, inp, filt, output, args: str, scratch_bytes: int) -> InPlace | None:
    """tp_conv2d_s8_helium_inplace: output rows through a ring, then the kernel's scratch, if
    that costs less than sharing the buffer saves."""
    ring = inplace_rows(op, inp, filt, output)
    if ring is None or ring[0] + scratch_bytes >= min(inp.nbytes, output.nbytes):
        return None
    return InPlace(
        inputs=(inp.index,), header="tp_helium.h",
        sources=("helium/tp_conv2d_s8_helium_inplace.c", "reference/tp_conv_rows_inplace.c"),
        scratch_bytes=ring[0] + scratch_bytes, structs=[ring[1]],
        call=(f"tp_conv2d_s8_helium_inplace({args}, &${{p}}rows, $t{output.index}, (int8_t *)$scratch, "
              f"{f'(int8_t *)$scratch + {ring[0]}' if scratch_bytes else 'NULL'});"),
    )


def _pointwise_inplace(inp, output, args: str) -> InPlace | None:
    """tp_conv2d_s8_helium_pointwise_inplace: a 1x1 stride-1 convolution a block of pixels at a
    time (about a row, even so the kernel's pixel pairs stay whole), the block its scratch."""
    block = output.shape[2] + output.shape[2] % 2
    if inp.shape[0] != 1 or block * output.shape[3] >= min(inp.nbytes, output.nbytes):
        return None
    return InPlace(
        inputs=(inp.index,), header="tp_helium.h", sources=("helium/tp_conv2d_s8_helium_inplace.c",),
        scratch_bytes=block * output.shape[3],
        call=f"tp_conv2d_s8_helium_pointwise_inplace({args}, {block}, $t{output.index}, (int8_t *)$scratch);",
    )


@lowers("FULLY_CONNECTED", kernels="helium")
def lower_fully_connected_helium(graph: Graph, op: Operator) -> Step:
    dsp = lower_fully_connected_dsp(graph, op)
    if dsp.kernel_dir != "dsp":
        return dsp  # 16x8, weights with a zero point, a run-time bias: the reference kernel
    inp, weights, bias = (graph.input_tensors(op) + [None])[:3]
    output = graph.tensors[op.outputs[0]]
    output_depth, accum_depth = weights.shape
    w_quant = weights.quantization
    multipliers, shifts = per_channel_requant(inp.scale, w_quant.scale, output.scale,
                                              output_depth if w_quant.per_channel else 1)
    if not w_quant.per_channel:  # the kernel takes one entry per row
        multipliers, shifts = np.repeat(multipliers, output_depth), np.repeat(shifts, output_depth)
    words = helium_words(effective_bias(weights.data, bias.data if bias is not None else None, -inp.zero_point),
                         multipliers, shifts)
    act_min, act_max = fused_activation(op, output)
    return Step(
        op=op, header="tp_helium.h", sources=("tp_fully_connected_s8_helium.c", *SOURCES), kernel_dir="helium",
        arrays=[CArray("packed_filter", "int8_t", pack_helium_filter(weights.data)),
                CArray("words", "int32_t", words)],
        structs=[CStruct("tp_fc_params", "params",
                         f"{{{-inp.zero_point}, 0, {output.zero_point}, {int(w_quant.per_channel)}, "
                         f"{{{act_min}, {act_max}}}}}")],
        call=(f"tp_fully_connected_s8_helium(&${{p}}params, {inp.num_elements // accum_depth}, {accum_depth}, "
              f"{output_depth}, $t{inp.index}, ${{p}}packed_filter, ${{p}}words, $t{output.index});"),
    )
