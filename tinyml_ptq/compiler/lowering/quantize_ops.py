"""QUANTIZE (int8 -> int8 or int16, int16 -> int8, int16 or int32, int32 -> int16, float32 -> int8 or
int16) and DEQUANTIZE (int8 or int16 -> float32)."""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CStruct, Step, constraint, lowers
from .common import PER_TENSOR, elementwise_inplace, is_int16x8, require_int8

QUANTIZE_TYPES = constraint("QUANTIZE", doc="int8 -> int8 or int16, int16 -> int8, int16 or int32, int32 -> int16 and "
                                            "float32 -> int8 or int16")
DEQUANTIZE_TYPES = constraint("DEQUANTIZE", doc="int8 or int16 -> float32")
QUANTIZE_FLOAT_ACTIVATION = constraint("QUANTIZE", "DEQUANTIZE",
                                       doc="a float32 side that is an activation, not a constant")

# (input, output) types of the QUANTIZE rescales with an int16 side: TFLM's Requantize for each, our kernel.
REQUANTIZE_S16_KERNELS = {
    ("int16", "int8"): "tp_requantize_s16_s8",
    ("int16", "int16"): "tp_requantize_s16_s16",
    ("int16", "int32"): "tp_requantize_s16_s32",
    ("int8", "int16"): "tp_requantize_s8_s16",
    ("int32", "int16"): "tp_requantize_s32_s16",
}


def float_literal(value: float) -> str:
    """A C float literal that is exactly the float32 value (hexadecimal, C99)."""
    return float(np.float32(value)).hex() + "f"


def _per_tensor(op: Operator, tensor: Tensor) -> None:
    if tensor.quantization is None or tensor.quantization.per_channel:
        how = "unquantized" if tensor.quantization is None else "per-channel quantized"
        raise PER_TENSOR.refusal(op, f"has {how} {tensor.dtype} tensor {shorten(tensor.name)!r}")


def _arena_float(op: Operator, tensor: Tensor) -> None:
    """The float32 side of QUANTIZE or DEQUANTIZE: an activation, not a constant."""
    if tensor.dtype != "float32":  # only DEQUANTIZE's output can be another type here
        raise DEQUANTIZE_TYPES.refusal(op, f"has {tensor.dtype} output {shorten(tensor.name)!r}")
    if tensor.is_constant:
        raise QUANTIZE_FLOAT_ACTIVATION.refusal(op, f"has constant float32 tensor {shorten(tensor.name)!r}")


@lowers("QUANTIZE")
def lower_quantize(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if (inp.dtype, output.dtype) in REQUANTIZE_S16_KERNELS and inp.quantization is not None:
        return _requantize_s16(op, inp, output)
    int16_output = inp.dtype == "float32" and is_int16x8(output)  # a float input of an int16x8 model
    if not int16_output:
        require_int8(graph, op, output)
    _per_tensor(op, output)
    size = output.num_elements
    if inp.dtype == "float32":
        _arena_float(op, inp)
        return Step(
            op=op,
            header="tp_quantize.h",
            sources=("tp_quantize_f32_s8.c",),
            call=(f"tp_quantize_f32_{'s16' if int16_output else 's8'}({float_literal(output.scale)}, "
                  f"{output.zero_point}, {size}, (const float *)(const void *)$t{inp.index}, $t{output.index});"),
        )
    if inp.dtype != "int8" or inp.quantization is None:
        unquantized = "" if inp.quantization else " (unquantized)"
        raise QUANTIZE_TYPES.refusal(op, f"converts {inp.dtype}{unquantized} to {output.dtype}")
    _per_tensor(op, inp)
    multiplier, shift = quant_math.quantize_multiplier(float(np.float32(inp.scale)) / float(np.float32(output.scale)))
    return Step(
        op=op,
        header="tp_quantize.h",
        sources=("tp_requantize_s8.c",),
        structs=[CStruct("tp_requantize_params", "params",
                         f"{{{inp.zero_point}, {output.zero_point}, {{{multiplier}, {shift}}}}}")],
        call=f"tp_requantize_s8(&${{p}}params, {size}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


def _requantize_s16(op: Operator, inp: Tensor, output: Tensor) -> Step:
    """A rescale with an int16 side (a model's int16 input brought to int8, an int16 softmax's output
    widened, int16 requantized, int8 or int32 brought to int16), as TFLM's Requantize: the scale ratio
    in double, rounded by MultiplyByQuantizedMultiplier, saturated to the output's type."""
    _per_tensor(op, inp)
    _per_tensor(op, output)
    multiplier, shift = quant_math.quantize_multiplier(float(np.float32(inp.scale)) / float(np.float32(output.scale)))
    kernel = REQUANTIZE_S16_KERNELS[(inp.dtype, output.dtype)]
    return Step(
        op=op,
        header="tp_quantize.h",
        sources=("tp_requantize_s16.c",),
        structs=[CStruct("tp_requantize_params", "params",
                         f"{{{inp.zero_point}, {output.zero_point}, {{{multiplier}, {shift}}}}}")],
        call=f"{kernel}(&${{p}}params, {output.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),  # int16 -> int16: element i is read before it is written
    )


@lowers("DEQUANTIZE")
def lower_dequantize(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    int16 = is_int16x8(inp)  # an int16x8 model's float output
    if not int16:
        require_int8(graph, op, inp)
    _per_tensor(op, inp)
    _arena_float(op, output)
    return Step(
        op=op,
        header="tp_quantize.h",
        sources=("tp_dequantize_s8_f32.c",),
        call=(f"tp_dequantize_{'s16' if int16 else 's8'}_f32({float_literal(inp.scale)}, {inp.zero_point}, "
              f"{inp.num_elements}, $t{inp.index}, (float *)(void *)$t{output.index});"),
    )
