"""FULLY_CONNECTED, int8 x int8 -> int8 with int32 bias, per-tensor or per-channel."""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import effective_bias, fused_activation, is_int16x8, per_channel_requant, require_int8, require_int16x8
from .conv import INT32_BIAS

CONSTANT_WEIGHTS = constraint("FULLY_CONNECTED", doc="constant weights")
DEFAULT_WEIGHTS_FORMAT = constraint("FULLY_CONNECTED", doc="weights in the DEFAULT format (not shuffled)")


@lowers("FULLY_CONNECTED")
def lower_fully_connected(graph: Graph, op: Operator) -> Step:
    """int8, or 16x8 (int16 activations with zero point 0, int64 bias and accumulator)."""
    inp, weights, bias = (graph.input_tensors(op) + [None])[:3]
    output = graph.tensors[op.outputs[0]]
    wide = is_int16x8(inp)
    if wide:
        require_int16x8(graph, op, (inp, output), weights, bias)
    else:
        require_int8(graph, op, inp, weights, output)
    if weights is None:
        raise MalformedOperator(f"FULLY_CONNECTED (node {op.index}) has no weights operand; the model is inconsistent")
    if not weights.is_constant:
        raise CONSTANT_WEIGHTS.refusal(op, f"has non-constant weights {shorten(weights.name)!r}")
    if not wide and bias is not None and bias.dtype != "int32":
        raise INT32_BIAS.refusal(op, f"has a {bias.dtype} bias")
    if op.options.get("weights_format", 0) != 0:
        raise DEFAULT_WEIGHTS_FORMAT.refusal(op, f"has shuffled weights (weights_format "
                                                 f"{op.options.get('weights_format')})")
    output_depth, accum_depth = weights.shape
    batches = inp.num_elements // accum_depth

    w_quant = weights.quantization
    # TFLM forms input_scale * filter_scale in double here as for convolutions
    # (tests/ops/test_fully_connected.py pins this with exact rounding ties).
    channels = output_depth if w_quant.per_channel else 1
    multipliers, shifts = per_channel_requant(inp.scale, w_quant.scale, output.scale, channels)
    act_min, act_max = fused_activation(op, output)

    kernel = "tp_fully_connected_s16" if wide else "tp_fully_connected_s8"
    bias_arg = f"$t{bias.index}" if bias is not None else "NULL"
    return Step(
        op=op,
        header="tp_fully_connected.h",
        sources=(f"{kernel}.c",),
        arrays=[CArray("multiplier", "int32_t", multipliers), CArray("shift", "int32_t", shifts)],
        structs=[
            CStruct("tp_fc_params", "params",
                    f"{{{-inp.zero_point}, {-weights.zero_point}, {output.zero_point}, "
                    f"{int(w_quant.per_channel)}, {{{act_min}, {act_max}}}}}"),
            CStruct("tp_per_channel_requant", "quant", "{${p}multiplier, ${p}shift}"),
        ],
        call=(f"{kernel}(&${{p}}params, &${{p}}quant, {batches}, {accum_depth}, {output_depth}, "
              f"$t{inp.index}, $t{weights.index}, {bias_arg}, $t{output.index});"),
    )


@lowers("FULLY_CONNECTED", kernels="dsp")
def lower_fully_connected_dsp(graph: Graph, op: Operator) -> Step:
    base = lower_fully_connected(graph, op)
    inp, weights, bias = (graph.input_tensors(op) + [None])[:3]
    if is_int16x8(inp):
        return base  # the reference 16x8 kernel: the DSP set has none
    if weights.zero_point != 0 or (bias is not None and not bias.is_constant):
        return base  # the DSP kernel has no filter offset
    output_depth, accum_depth = weights.shape
    bias_values = effective_bias(weights.data, bias.data if bias is not None else None, -inp.zero_point)
    output = graph.tensors[op.outputs[0]]
    return Step(
        op=op, header="tp_dsp.h", sources=("tp_fully_connected_s8_dsp.c",), kernel_dir="dsp",
        arrays=base.arrays + [CArray("effective_bias", "int32_t", bias_values),
                              CArray("packed_filter", "int32_t", pack_fully_connected_filter(weights.data))],
        structs=base.structs,
        call=(f"tp_fully_connected_s8_dsp(&${{p}}params, &${{p}}quant, {inp.num_elements // accum_depth}, "
              f"{accum_depth}, {output_depth}, $t{inp.index}, ${{p}}packed_filter, ${{p}}effective_bias, "
              f"$t{output.index});"),
    )


def pack_fully_connected_filter(filt: np.ndarray) -> np.ndarray:
    """An [output_depth][accum_depth] filter in tp_fully_connected_s8_dsp's order (see tp_dsp.h),
    as little-endian words so the kernel's loads are aligned: per block of four rows, their words
    for inputs 4j..4j+3 one after another, then each row's last accum_depth % 4 weights; the rows
    past the last whole block as they are. The same bytes reordered (at most 3 of padding)."""
    rows, depth = filt.shape
    blocked, whole = rows - rows % 4, depth - depth % 4
    blocks = filt[:blocked].reshape(blocked // 4, 4, depth)
    words = blocks[:, :, :whole].reshape(blocked // 4, 4, whole // 4, 4).transpose(0, 2, 1, 3)
    tails = blocks[:, :, whole:]
    packed = np.concatenate([words.reshape(blocked // 4, 4 * whole), tails.reshape(blocked // 4, 4 * (depth - whole))],
                            axis=1)
    data = np.concatenate([packed.reshape(-1), filt[blocked:].reshape(-1)]).astype(np.int8)
    data = np.concatenate([data, np.zeros(-len(data) % 4, dtype=np.int8)])
    return data.view("<i4").astype(np.int32)
