"""RESIZE_BILINEAR, int8 (tf.image.resize, Keras UpSampling2D / Resizing with bilinear
interpolation), as TFLM's ResizeBilinearInteger computes it.

Everything but the blend is known ahead of time: per output row and column the two input
coordinates and the weight, in 1/1024ths of a pixel (tp_resize.h). TFLM takes the output size
from the constant size operand; it must agree with the output tensor.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import NHWC, SAME_QUANTIZATION, dims_initializer, require_int8

ONE = 1 << 10  # an input pixel in TFLM's fixed point

RESIZE_CONSTANT_SIZE = constraint("RESIZE_BILINEAR",
                                  doc="a constant int32 size operand [height, width] (TFLM refuses a run-time size)")
RESIZE_ALIGN_OR_HALF_PIXEL = constraint("RESIZE_BILINEAR",
                                        doc="at most one of align_corners and half_pixel_centers (TFLM refuses both)")
RESIZE_SIZE_RANGE = constraint("RESIZE_BILINEAR", doc="heights and widths of 1 to 32767")
RESIZE_WITHIN_INPUT = constraint("RESIZE_BILINEAR",
                                 doc="sizes whose output pixels stay within the input in TFLM's fixed-point arithmetic "
                                     "(it never clamps the lower coordinate: past the input it would read beyond it)")


def _c_div(a: int, b: int) -> int:
    """C's integer division (toward zero) for b > 0."""
    return a // b if a >= 0 else -((-a) // b)


def resize_axis(in_size: int, out_size: int, align_corners: bool,
                half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, weight) per output coordinate: TFLM's scale_10 and
    ComputeInterpolationValuesInteger, in its int32 arithmetic."""
    if align_corners and out_size > 1:
        scale = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (ONE * in_size + out_size // 2) // out_size
    lower, upper, weight = [], [], []
    for o in range(out_size):
        p = o * scale + (scale // 2 - (1 << 9) if half_pixel_centers else 0)
        lo = max(_c_div(p, ONE), 0)
        lower.append(lo)
        upper.append(min(_c_div(p + ONE - 1, ONE), in_size - 1))
        weight.append(p - ONE * lo)
    return np.array(lower), np.array(upper), np.array(weight)


@lowers("RESIZE_BILINEAR")
def lower_resize_bilinear(graph: Graph, op: Operator) -> Step:
    where = f"RESIZE_BILINEAR (node {op.index})"
    if len(op.inputs) != 2 or min(op.inputs) < 0 or len(op.outputs) != 1:
        raise MalformedOperator(f"{where} has inputs {op.inputs} and outputs {op.outputs}; "
                                "it takes (input, size) and one output")
    inp, size = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    if len(inp.shape) != 4 or len(output.shape) != 4:
        raise NHWC.refusal(op, f"has input {list(inp.shape)} and output {list(output.shape)}")
    if size.data is None or size.dtype != "int32" or size.num_elements != 2:
        had = "computed at run time" if size.data is None else f"{size.dtype}, {size.num_elements} values"
        raise RESIZE_CONSTANT_SIZE.refusal(op, f"has size operand {shorten(size.name)!r} ({had})")
    new_h, new_w = (int(v) for v in size.data.reshape(-1))
    if (inp.shape[0], new_h, new_w, inp.shape[3]) != tuple(output.shape):
        raise MalformedOperator(f"{where}: input {list(inp.shape)} resized to {new_h}x{new_w} does not give the "
                                f"output's shape {list(output.shape)}; the model is inconsistent")
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    if align and half:
        raise RESIZE_ALIGN_OR_HALF_PIXEL.refusal(op, "has both align_corners and half_pixel_centers")
    if (inp.quantization.scale.tolist(), inp.zero_point) != (output.quantization.scale.tolist(), output.zero_point):
        # TFLM blends the integers as they are: only right when both share one quantization,
        # which the converter always gives them.
        raise SAME_QUANTIZATION.refusal(op, f"has output quantization (scale {output.scale:g}, zero point "
                                                   f"{output.zero_point}) other than the input's ({inp.scale:g}, "
                                                   f"{inp.zero_point})")
    if min(inp.shape[1:3]) < 1 or min(new_h, new_w) < 1 or max(*inp.shape[1:3], new_h, new_w) >= 1 << 15:
        raise RESIZE_SIZE_RANGE.refusal(op, f"resizes {list(inp.shape)} to {list(output.shape)}")
    arrays, axes = [], []
    for name, in_size, out_size in (("y", inp.shape[1], new_h), ("x", inp.shape[2], new_w)):
        lower, upper, weight = resize_axis(in_size, out_size, align, half)
        if lower.max() > in_size - 1 or weight.min() < -ONE or (ONE * lower + weight).max() >= 1 << 31:
            # TFLM never clamps `lower` from above: past the input it would read beyond it.
            lines = "rows" if name == "y" else "columns"
            raise RESIZE_WITHIN_INPUT.refusal(op, f"resizes {in_size} -> {out_size} {lines}, putting output pixels "
                                                  "past the input")
        for part, values in (("lower", lower), ("upper", upper), ("weight", weight)):
            arrays.append(CArray(f"{name}_{part}", "int16_t", values.astype(np.int16)))
        axes.append(CStruct("tp_resize_axis", f"{name}_axis", f"{{${{p}}{name}_lower, ${{p}}{name}_upper, "
                                                             f"${{p}}{name}_weight}}"))
    return Step(
        op=op,
        header="tp_resize.h",
        sources=("tp_resize_bilinear_s8.c",),
        arrays=arrays,
        structs=[CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
                 CStruct("tp_dims", "output_dims", dims_initializer(output.shape)), *axes],
        call=(f"tp_resize_bilinear_s8(&${{p}}input_dims, $t{inp.index}, &${{p}}y_axis, &${{p}}x_axis, "
              f"&${{p}}output_dims, $t{output.index});"),
    )
