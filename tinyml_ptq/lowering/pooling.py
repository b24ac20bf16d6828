"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN over height and width, int8."""

from __future__ import annotations

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CStruct, Step, UnsupportedOperator, lowers
from .common import checked_padding, dims_initializer, fused_activation, require_int8


def _pool_params(op: Operator, inp: Tensor, output: Tensor) -> str:
    options = op.options
    stride = (options.get("stride_h", 1), options.get("stride_w", 1))
    filt = (options.get("filter_height", 1), options.get("filter_width", 1))
    if len(inp.shape) != 4:
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) has a rank-{len(inp.shape)} input; only NHWC is supported")
    if min(stride) < 1 or min(filt) < 1:
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) has stride {stride} and filter {filt}; both must be >= 1")
    pad_h, pad_w = checked_padding(op, inp.shape[1:3], filt, stride, (1, 1), output.shape[1:3])
    act_min, act_max = fused_activation(op, output)
    return (f"{{{{{stride[0]}, {stride[1]}}}, {{{filt[0]}, {filt[1]}}}, {{{pad_h}, {pad_w}}}, "
            f"{{{act_min}, {act_max}}}}}")


@lowers("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    # TFLM's Prepare refuses pooling that would change quantization.
    if abs(inp.scale - output.scale) > 1e-6 or inp.zero_point != output.zero_point:
        raise UnsupportedOperator(
            f"{op.opcode} (node {op.index}) changes quantization (scale {inp.scale:g} -> {output.scale:g}, "
            f"zero point {inp.zero_point} -> {output.zero_point}); TFLite requires them equal")
    kernel = "tp_avg_pool_s8" if op.opcode == "AVERAGE_POOL_2D" else "tp_max_pool_s8"
    return Step(
        op=op,
        header="tp_pooling.h",
        sources=(f"{kernel}.c",),
        structs=[
            CStruct("tp_pool_params", "params", _pool_params(op, inp, output)),
            CStruct("tp_dims", "in_dims", dims_initializer(inp.shape)),
            CStruct("tp_dims", "out_dims", dims_initializer(output.shape)),
        ],
        call=f"{kernel}(&${{p}}params, &${{p}}in_dims, $t{inp.index}, &${{p}}out_dims, $t{output.index});",
    )


def mean_requant(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM's int8 MEAN rescale: QuantizeMultiplier(in/out in double), then 1/count folded
    into the multiplier by an integer division, keeping the shift within range."""
    multiplier, shift = quant_math.quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << fold) // count, shift - fold


@lowers("MEAN")
def lower_mean(graph: Graph, op: Operator) -> Step:
    inp, axis = graph.input_tensors(op)[:2]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    if len(inp.shape) != 4 or axis is None or not axis.is_constant:
        raise UnsupportedOperator(f"MEAN (node {op.index}) is supported only over a 4-D NHWC input with constant axes")
    axes = {int(a) + 4 if int(a) < 0 else int(a) for a in np.asarray(axis.data).ravel()}
    if axes != {1, 2}:
        raise UnsupportedOperator(f"MEAN (node {op.index}) over axes {sorted(axes)}; only axes [1, 2] (height and width) "
                                  "are supported")
    count = inp.shape[1] * inp.shape[2]
    multiplier, shift = mean_requant(inp.scale, output.scale, count)
    return Step(
        op=op,
        header="tp_pooling.h",
        sources=("tp_mean_hw_s8.c",),
        structs=[
            CStruct("tp_mean_params", "params",
                    f"{{{-inp.zero_point * count}, {{{multiplier}, {shift}}}, {output.zero_point}}}"),
            CStruct("tp_dims", "in_dims", dims_initializer(inp.shape)),
        ],
        call=f"tp_mean_hw_s8(&${{p}}params, &${{p}}in_dims, $t{inp.index}, $t{output.index});",
    )
