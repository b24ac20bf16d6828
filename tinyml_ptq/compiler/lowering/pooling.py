"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 or int16 (16x8) (MEAN, over any axes, is in reduce.py)."""

from __future__ import annotations

from ..ir import Graph, Operator, Tensor
from . import CStruct, Step, lowers
from .common import (NHWC, SAME_QUANTIZATION, WINDOW_AT_LEAST_ONE, checked_padding, dims_initializer, fused_activation,
                     is_int16x8, require_int8, require_int16x8)


def _pool_params(op: Operator, inp: Tensor, output: Tensor) -> str:
    options = op.options
    stride = (options.get("stride_h", 1), options.get("stride_w", 1))
    filt = (options.get("filter_height", 1), options.get("filter_width", 1))
    if len(inp.shape) != 4:
        raise NHWC.refusal(op, f"has a rank-{len(inp.shape)} input {list(inp.shape)}")
    if min(stride) < 1 or min(filt) < 1:
        raise WINDOW_AT_LEAST_ONE.refusal(op, f"has stride {stride} and filter {filt}")
    pad_h, pad_w = checked_padding(op, inp.shape[1:3], filt, stride, (1, 1), output.shape[1:3])
    act_min, act_max = fused_activation(op, output)
    return (f"{{{{{stride[0]}, {stride[1]}}}, {{{filt[0]}, {filt[1]}}}, {{{pad_h}, {pad_w}}}, "
            f"{{{act_min}, {act_max}}}}}")


@lowers("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    int16 = is_int16x8(inp)
    if int16:
        require_int16x8(graph, op, (inp, output))
    else:
        require_int8(graph, op, inp, output)
    # TFLM's Prepare refuses pooling that would change quantization.
    if abs(inp.scale - output.scale) > 1e-6 or inp.zero_point != output.zero_point:
        raise SAME_QUANTIZATION.refusal(
            op, f"changes quantization (scale {inp.scale:g} -> {output.scale:g}, "
                f"zero point {inp.zero_point} -> {output.zero_point})")
    kernel = ("tp_avg_pool" if op.opcode == "AVERAGE_POOL_2D" else "tp_max_pool") + ("_s16" if int16 else "_s8")
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
