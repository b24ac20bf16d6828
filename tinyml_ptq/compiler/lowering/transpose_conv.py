"""TRANSPOSE_CONV, int8 with optional int32 bias (Keras Conv2DTranspose, tf.nn.conv2d_transpose),
or 16x8 (int16 activations, optional int64 or int16 bias) on the reference kernel.

TFLite orders its inputs (output shape, filter, input, bias): the int32 output-shape
operand comes first. TFLM reads the output size from the output tensor, not from that
operand, and derives the padding by treating the output as the input of a forward
convolution (ComputePaddingHeightWidth with dilation 1): this lowering does the same.

TFLM scatters into an int32 scratch of the whole output; tp_transpose_conv2d_s8
gathers each output value in a register instead (same terms, same int32 sum), so the
step needs no scratch. Requantization is per output channel as for CONV_2D.

The DSP kernels (tp_dsp_transpose_conv.h) split the output into stride_h x stride_w phases,
each a stride-1 convolution with every stride-th filter tap, run on CONV_2D's matrix kernel
with CONV_2D's packing and output words per phase.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import (INT32_OPERANDS, PADDING, PADDING_NAMES, WINDOW_AT_LEAST_ONE, dims_initializer, fused_activation,
                     is_int16x8, output_size_and_padding, per_channel_requant)
from .conv import check_conv_tensors, dsp_channel_words, pack_conv_filter, pair_words

CONSTANT_INT16_BIAS = constraint("TRANSPOSE_CONV", doc="an int16 bias (int16 activations) that is constant: it is "
                                                       "widened to int64 ahead of time")

# TFLite's operand positions (kTransposeConv*Tensor in TFLM).
OUTPUT_SHAPE, FILTER, INPUT, BIAS = range(4)


def transpose_conv_padding(op: Operator, filt: Tensor, output: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """(h, w) stride and top/left padding, as TFLM's TRANSPOSE_CONV prepares them: the padding
    of a forward convolution from the output's size with this filter and stride."""
    options = op.options
    stride = (options.get("stride_h", 1), options.get("stride_w", 1))
    if min(stride) < 1:
        raise WINDOW_AT_LEAST_ONE.refusal(op, f"has stride {stride}")
    padding = options.get("padding", 0)
    if padding not in PADDING_NAMES:
        raise PADDING.refusal(op, f"has padding {padding}")
    pad = tuple(output_size_and_padding(padding, output.shape[1 + axis], filt.shape[1 + axis], stride[axis], 1)[1]
                for axis in (0, 1))
    return stride, pad


def _operands(graph: Graph, op: Operator) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Input, filter, bias (or None) and output, after the checks CONV_2D's filters get."""
    if len(op.inputs) < 3 or min(op.inputs[:3]) < 0 or len(op.outputs) != 1:
        raise MalformedOperator(
            f"TRANSPOSE_CONV (node {op.index}) has inputs {op.inputs} and outputs {op.outputs}; it takes "
            "(output shape, filter, input[, bias]) and one output; the model is inconsistent")
    # The CONV_2D checks (int8 with an int32 bias or 16x8 with an int64 one, 4-D, symmetric
    # filter, one scale per output channel along axis 0) on the operands in CONV_2D's order.
    # TFLM's 16x8 kernel also takes an int16 bias, widened to int64: checked here instead.
    narrow_bias = (len(op.inputs) > BIAS and op.inputs[BIAS] >= 0 and is_int16x8(graph.tensors[op.inputs[INPUT]])
                   and graph.tensors[op.inputs[BIAS]].dtype == "int16")
    as_conv = dataclasses.replace(
        op, inputs=[op.inputs[INPUT], op.inputs[FILTER], *op.inputs[BIAS:BIAS + (0 if narrow_bias else 1)]])
    inp, filt, bias, output = check_conv_tensors(graph, as_conv, channel_axis=0, int16x8=True)
    if narrow_bias:
        bias = graph.tensors[op.inputs[BIAS]]
        if not bias.is_constant:
            raise CONSTANT_INT16_BIAS.refusal(op, f"has a run-time int16 bias {shorten(bias.name)!r}")
    shape = graph.tensors[op.inputs[OUTPUT_SHAPE]]
    if shape.dtype != "int32":
        raise INT32_OPERANDS.refusal(op, f"has a {shape.dtype} output shape {shorten(shape.name)!r}")
    # A run-time output shape (TFLM's SEANet models take it as a model input) is not read: TFLM
    # ignores operand 0 and takes the output tensor's static shape, as the kernel here does.
    if shape.data is not None and tuple(int(d) for d in shape.data.reshape(-1)) != tuple(output.shape):
        raise MalformedOperator(
            f"TRANSPOSE_CONV (node {op.index}): output shape operand {shape.data.reshape(-1).tolist()} differs "
            f"from the output tensor's shape {list(output.shape)}; the model is inconsistent")
    if filt.shape[3] != inp.shape[3] or filt.shape[0] != output.shape[3] or inp.shape[0] != output.shape[0]:
        raise MalformedOperator(
            f"TRANSPOSE_CONV (node {op.index}): filter {list(filt.shape)} does not map input {list(inp.shape)} "
            f"to output {list(output.shape)} (filter is [out_c, kh, kw, in_c]); the model is inconsistent")
    if bias is not None and bias.num_elements != output.shape[3]:
        raise MalformedOperator(
            f"TRANSPOSE_CONV (node {op.index}): bias of {bias.num_elements} values for {output.shape[3]} channels; "
            "the model is inconsistent")
    return inp, filt, bias, output


@lowers("TRANSPOSE_CONV")
def lower_transpose_conv(graph: Graph, op: Operator) -> Step:
    inp, filt, bias, output = _operands(graph, op)
    stride, pad = transpose_conv_padding(op, filt, output)
    act_min, act_max = fused_activation(op, output)
    channels = output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, channels)
    params = (f"{{{-inp.zero_point}, {output.zero_point}, {{{stride[0]}, {stride[1]}}}, {{1, 1}}, "
              f"{{{pad[0]}, {pad[1]}}}, {{{act_min}, {act_max}}}}}")
    arrays = [CArray("multiplier", "int32_t", multipliers), CArray("shift", "int32_t", shifts)]
    bias_arg = f"$t{bias.index}" if bias is not None else "NULL"
    if bias is not None and bias.dtype == "int16":  # a 16x8 int16 bias, widened as TFLM widens it
        arrays.append(CArray("bias", "int64_t", bias.data.reshape(-1).astype(np.int64)))
        bias_arg = "${p}bias"
    kernel = "tp_transpose_conv2d_s16" if is_int16x8(inp) else "tp_transpose_conv2d_s8"
    return Step(
        op=op,
        header="tp_transpose_conv.h",
        sources=(f"{kernel}.c",),
        arrays=arrays,
        structs=[
            CStruct("tp_conv_params", "params", params),
            CStruct("tp_per_channel_requant", "quant", "{${p}multiplier, ${p}shift}"),
            CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
            CStruct("tp_dims", "filter_dims", dims_initializer(filt.shape)),
            CStruct("tp_dims", "output_dims", dims_initializer(output.shape)),
        ],
        call=(f"{kernel}(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, $t{filt.index}, {bias_arg}, &${{p}}output_dims, $t{output.index});"),
    )


def phase_filters(filt: np.ndarray, stride: tuple[int, int]) -> list[np.ndarray]:
    """The [out_c][kh][kw][in_c] filter cut into tp_dsp_transpose_conv.h's phases, row phase major:
    per phase (r_h, r_w) its rows of taps r, r + stride, ... in reverse order, flattened per output
    channel; a phase no tap reaches (stride above the filter size) gets 4 zero weights."""
    phases = []
    for ry in range(stride[0]):
        for rx in range(stride[1]):
            sub = filt[:, ry::stride[0], rx::stride[1], :][:, ::-1, ::-1, :]
            rows = sub.reshape(len(filt), -1)
            phases.append(rows if rows.shape[1] else np.zeros((len(filt), 4), dtype=filt.dtype))
    return phases


@lowers("TRANSPOSE_CONV", kernels="dsp")
def lower_transpose_conv_dsp(graph: Graph, op: Operator) -> Step:
    base = lower_transpose_conv(graph, op)
    inp, filt, bias, output = _operands(graph, op)
    if is_int16x8(inp):
        return base  # the reference 16x8 kernel: the DSP set has none
    if not filt.is_constant or (bias is not None and not bias.is_constant):
        return base  # run-time weights cannot be packed ahead of time
    stride, _ = transpose_conv_padding(op, filt, output)
    if stride[0] * stride[1] > output.shape[1] * output.shape[2]:
        return base  # more phases than output pixels (a stride beyond the output): nothing to gain
    channels = output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, channels)
    activation = fused_activation(op, output)
    phases = phase_filters(filt.data, stride)
    packed, words = [], []
    for rows in phases:
        # Each phase is a convolution of its own: its sub-filter's effective bias, its own proof of
        # the short requantization, its own constant (all-zero) channels.
        phase_words, constant = dsp_channel_words(rows, bias.data if bias is not None else None, -inp.zero_point,
                                                  output.zero_point, multipliers, shifts, activation)
        packed.append(pack_conv_filter(rows))
        words.append(pair_words(phase_words, np.where(constant, 0, multipliers), activation == (-128, 127)))
    groups = max(-(-rows.shape[1] // 4) for rows in phases)
    return Step(
        op=op,
        header="tp_dsp_transpose_conv.h",
        sources=("tp_transpose_conv2d_s8_dsp.c", "tp_dsp_gemm_s8.c", "tp_dsp_gemm_s8_pairs.S"),
        kernel_dir="dsp",
        arrays=base.arrays + [CArray("packed_filter", "int32_t", np.concatenate(packed)),
                              CArray("words", "int32_t", np.concatenate(words))],
        structs=base.structs,
        call=(f"tp_transpose_conv2d_s8_dsp(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, ${{p}}packed_filter, ${{p}}words, &${{p}}output_dims, $t{output.index}, "
              "(int8_t *)$scratch);"),
        scratch_bytes=20 * groups,  # two widened columns (16 bytes a group), then the gather buffer
    )
