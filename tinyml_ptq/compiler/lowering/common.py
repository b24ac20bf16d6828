"""Helpers shared by the lowering functions."""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import InPlace, MalformedOperator, constraint
from .operator_table import INT16X8_OPERATORS

INT8_TENSORS = constraint(doc="a full-integer model: quantized int8 activations and weights (quantize with "
                                "'tinyml-ptq quantize --mode int8')")
INT16_ON_INT16X8_OPERATORS = constraint(
    doc=f"int16 activations (an int16x8 model) on {', '.join(INT16X8_OPERATORS)}; --runtime tflm runs int16x8 "
        "models with any operator")
INT16X8_TENSORS = constraint(doc="int16x8: int16 activations throughout, each with zero point 0 (as TFLite's 16x8 "
                                 "mode quantizes them), int8 weights and an int64 bias (the converter's default)")
SYMMETRIC_WEIGHTS = constraint(doc="symmetric weights (zero point 0)")


def require_int8(graph: Graph, op: Operator, *tensors: Tensor | None) -> None:
    """Refuse float or hybrid operators with the same message the user sees everywhere."""
    for tensor in tensors:
        if tensor is None:
            continue
        if tensor.dtype == "int16" and tensor.quantization is not None:
            raise INT16_ON_INT16X8_OPERATORS.refusal(op, f"has int16 tensor {shorten(tensor.name)!r}")
        if tensor.dtype != "int8" or tensor.quantization is None:
            raise INT8_TENSORS.refusal(op, f"has {tensor.dtype}{'' if tensor.quantization else ' unquantized'} "
                                           f"tensor {shorten(tensor.name)!r}")


def is_int16x8(tensor: Tensor | None) -> bool:
    """A quantized int16 activation: the operator runs its 16x8 kernel (16-bit activations, 8-bit weights)."""
    return tensor is not None and tensor.dtype == "int16" and tensor.quantization is not None


def require_int16x8(graph: Graph, op: Operator, activations: tuple[Tensor | None, ...],
                    weights: Tensor | None = None, bias: Tensor | None = None) -> None:
    """The tensors a 16x8 kernel takes: int16 activations with zero point 0 (as TFLite's 16x8 mode
    quantizes them), symmetric int8 weights and an int64 bias; anything else refused by name."""
    for tensor in activations:
        if tensor is None:
            continue
        if not is_int16x8(tensor):
            raise INT16X8_TENSORS.refusal(op, f"mixes int16 and {tensor.dtype} tensor {shorten(tensor.name)!r}")
        if tensor.quantization.per_channel or tensor.zero_point != 0:
            raise INT16X8_TENSORS.refusal(op, f"has int16 tensor {shorten(tensor.name)!r} with zero point "
                                              f"{tensor.zero_point}")
    if weights is not None:
        if weights.dtype != "int8" or weights.quantization is None:
            raise INT16X8_TENSORS.refusal(op, f"has {weights.dtype} weights {shorten(weights.name)!r}")
        require_symmetric(op, weights)
    if bias is not None and bias.dtype != "int64":
        raise INT16X8_TENSORS.refusal(op, f"has a {bias.dtype} bias")


def require_symmetric(op: Operator, weights: Tensor) -> None:
    """TFLM's kernels drop a weight zero point: such a model does not compute what its
    quantization says, so it is refused rather than reproduced."""
    if np.any(np.asarray(weights.quantization.zero_point) != 0):
        raise SYMMETRIC_WEIGHTS.refusal(op, f"has weights {shorten(weights.name)!r} with nonzero zero points")


FUSED_ACTIVATION = constraint(doc="a fused activation NONE, RELU, RELU6 or RELU_N1_TO_1 whose clamp range "
                                    "meets the output's quantized range")


def fused_activation(op: Operator, output: Tensor) -> tuple[int, int]:
    fused = op.options.get("fused_activation_function", 0)
    if fused not in (0, 1, 2, 3):
        raise FUSED_ACTIVATION.refusal(op, f"has fused activation {quant_math.FUSED_ACTIVATIONS.get(fused, fused)}")
    try:
        if output.dtype == "int16":
            return quant_math.activation_range(fused, output.scale, output.zero_point, -32768, 32767)
        return quant_math.activation_range(fused, output.scale, output.zero_point)
    except quant_math.ActivationRangeError as exc:
        raise FUSED_ACTIVATION.refusal(op, f"has a fused activation out of reach ({exc})") from None


def per_channel_requant(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                        channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: one (multiplier, shift) per channel, in double."""
    multipliers = np.zeros(channels, dtype=np.int32)
    shifts = np.zeros(channels, dtype=np.int32)
    for c in range(channels):
        filter_scale = float(filter_scales[c if filter_scales.size > 1 else 0])
        real = float(np.float32(input_scale)) * filter_scale / float(np.float32(output_scale))
        multipliers[c], shifts[c] = quant_math.quantize_multiplier(real)
    return multipliers, shifts


def dims_initializer(shape: tuple[int, ...]) -> str:
    """NHWC tp_dims initializer from a shape of rank 1..4 (missing leading dims are 1)."""
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    if len(padded) != 4:
        raise ValueError(f"shape {shape} has rank above 4")
    return "{%d, %d, %d, %d}" % padded


PADDING_NAMES = {0: "SAME", 1: "VALID"}


def output_size_and_padding(padding: int, in_size: int, filter_size: int, stride: int,
                            dilation: int) -> tuple[int, int]:
    """ComputeOutSize and ComputePaddingWithOffset: (output size, leading padding).

    Odd total padding puts the extra row/column at the end, which the kernel gets
    for free by stopping at the input edge, so only the leading amount is kept.
    """
    effective_filter = (filter_size - 1) * dilation + 1
    if padding == 0:
        out_size = (in_size + stride - 1) // stride
    else:
        out_size = (in_size + stride - effective_filter) // stride
    total = max((out_size - 1) * stride + effective_filter - in_size, 0)
    return out_size, total // 2


PADDING = constraint(doc="padding SAME or VALID")


def checked_padding(op: Operator, input_hw: tuple[int, int], filter_hw: tuple[int, int],
                    stride: tuple[int, int], dilation: tuple[int, int], output_hw: tuple[int, int]) -> tuple[int, int]:
    """Leading (height, width) padding of a windowed op, after checking the output size it implies."""
    padding = op.options.get("padding", 0)
    if padding not in PADDING_NAMES:
        raise PADDING.refusal(op, f"has padding {padding}")
    out_h, pad_h = output_size_and_padding(padding, input_hw[0], filter_hw[0], stride[0], dilation[0])
    out_w, pad_w = output_size_and_padding(padding, input_hw[1], filter_hw[1], stride[1], dilation[1])
    if (out_h, out_w) != tuple(output_hw):
        raise MalformedOperator(
            f"{op.opcode} (node {op.index}): {PADDING_NAMES[padding]} padding gives a {out_h}x{out_w} output "
            f"but the model's output is {output_hw[0]}x{output_hw[1]}; the model is inconsistent")
    return pad_h, pad_w


def elementwise_inplace(output: Tensor, *inputs: Tensor) -> InPlace | None:
    """In-place offer for a kernel that reads element i of every input before it writes
    element i of the output: any input of the output's shape and type may be overwritten."""
    same = tuple(t.index for t in inputs if tuple(t.shape) == tuple(output.shape) and t.dtype == output.dtype)
    return InPlace(same) if same else None


def effective_bias(filter_rows: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """bias[o] + input_offset * sum(filter row o), wrapped to int32 as the kernels' accumulators wrap.

    The DSP kernels accumulate sum(x * w) and add this once, instead of adding input_offset to
    every input: the same integer, so the same output bit for bit (CMSIS-NN folds it likewise).
    """
    rows = np.asarray(filter_rows, dtype=np.int64).reshape(len(filter_rows), -1)
    total = rows.sum(axis=1) * int(input_offset)
    if bias is not None:
        total = total + np.asarray(bias, dtype=np.int64).reshape(-1)
    return ((total + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


PER_TENSOR = constraint(doc="one scale and zero point per tensor, but for convolution and fully-connected weights "
                              "(TFLite Micro would read a per-channel tensor's first alone)")
NHWC = constraint("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                  "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR",
                  doc="4-D (NHWC) inputs, filters and outputs")
WINDOW_AT_LEAST_ONE = constraint("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                                 doc="strides, dilations and filter sizes of at least 1")
SAME_QUANTIZATION = constraint("AVERAGE_POOL_2D", "MAX_POOL_2D", "REDUCE_MAX", "REDUCE_MIN", "RESIZE_BILINEAR",
                               doc="the input's scale and zero point on the output (TFLite Micro moves or blends the "
                                   "integers without rescaling; the converter gives both one quantization)")
CONSTANT_OPERANDS = constraint(
    "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "GATHER", "RESIZE_NEAREST_NEIGHBOR",
    "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN",
    "PAD", "PADV2",
    doc="constant integer operands (permutation, slice bounds, axes, indices, sizes, block shape, crops, paddings, "
        "fill value): they become kernel parameters at generation time")
INT32_OPERANDS = constraint(
    "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "GATHER", "RESIZE_NEAREST_NEIGHBOR",
    "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN",
    "TRANSPOSE_CONV",
    doc="int32 integer operands (SLICE: int32 or int64), as TFLite Micro reads them")


def require_per_tensor(op: Operator, *tensors: Tensor) -> None:
    for tensor in tensors:
        if tensor.quantization is not None and tensor.quantization.per_channel:
            raise PER_TENSOR.refusal(op, f"has per-channel quantized tensor {shorten(tensor.name)!r}")


RESCALE_RANGE = constraint(doc="rescale factors within TFLite's fixed-point range (a left shift of at most 30 "
                                 "bits: beyond it the reference shifts bits out of int32)")
PRIVATE_STATE = constraint("UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF",
                           doc="a state that is a variable tensor of its own (no constant data, no model input or "
                               "output, no other operator's): the kernel resets it at each invocation")


def rescale_multiplier(op: Operator, what: str, real: float) -> tuple[int, int]:
    """QuantizeMultiplier for a rescale of int32 values, refused when its left shift exceeds 30: the
    reference then shifts bits out of int32 (undefined in TFLite's C++ and in our C alike)."""
    multiplier, shift = quant_math.quantize_multiplier(real)
    if shift > 30:
        raise RESCALE_RANGE.refusal(op, f"has {what} rescale factor {real:g}")
    return multiplier, shift


def require_private_state(graph: Graph, op: Operator, what: str, state: Tensor) -> None:
    """A stateful operator's state (a TFLite variable tensor) is its own, written by nobody else:
    the kernel resets it at the start of each invocation. Refuse anything else, naming `what`."""
    if state.is_constant:
        raise PRIVATE_STATE.refusal(op, f"has {what} {shorten(state.name)!r} holding constant data")
    users = [o.index for o in graph.operators if o is not op and state.index in o.inputs + o.outputs]
    if state.index in graph.inputs or state.index in graph.outputs or users:
        raise PRIVATE_STATE.refusal(op, f"has {what} {shorten(state.name)!r} that is also a model input or output "
                                        "or used by another operator")
