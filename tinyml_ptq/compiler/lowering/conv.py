"""CONV_2D (regular and grouped) and DEPTHWISE_CONV_2D, int8 with int32 bias, or 16x8 (int16
activations, int64 bias) on the reference kernels.

Both always requantize per output channel: a per-tensor filter scale is repeated
for every channel, as TFLM's PopulateConvolutionQuantizationParams does (so the
multiplier comes from the double product, never the float one FULLY_CONNECTED uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, InPlace, MalformedOperator, Step, constraint, lowers
from .common import (NHWC, WINDOW_AT_LEAST_ONE, checked_padding, dims_initializer, effective_bias, fused_activation,
                     is_int16x8, per_channel_requant, require_int8, require_int16x8, require_symmetric)
from .gemmlowp_math import multiply_by_quantized_multiplier

INT32_BIAS = constraint("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
                        doc="an int32 bias with int8 activations")


def conv_geometry(op: Operator, inp: Tensor, filt: Tensor,
                  output: Tensor) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(h, w) stride, dilation and top/left padding, after checking the output shape they imply."""
    options = op.options
    stride = (options.get("stride_h", 1), options.get("stride_w", 1))
    dilation = (options.get("dilation_h_factor", 1), options.get("dilation_w_factor", 1))
    if min(stride + dilation) < 1:
        raise WINDOW_AT_LEAST_ONE.refusal(op, f"has stride {stride} and dilation {dilation}")
    pad = checked_padding(op, inp.shape[1:3], filt.shape[1:3], stride, dilation, output.shape[1:3])
    return stride, dilation, tuple(pad)


def _geometry(op: Operator, inp: Tensor, filt: Tensor, output: Tensor) -> tuple[str, str, str]:
    """Stride, dilation and padding initializers."""
    return tuple("{%d, %d}" % pair for pair in conv_geometry(op, inp, filt, output))


def check_conv_tensors(graph: Graph, op: Operator, channel_axis: int,
                   int16x8: bool = False) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """int8 tensors, or with `int16x8` also a 16x8 operator's (int16 activations, int64 bias)."""
    inp, filt, bias = (graph.input_tensors(op) + [None])[:3]
    output = graph.tensors[op.outputs[0]]
    if int16x8 and is_int16x8(inp):
        require_int16x8(graph, op, (inp, output), filt, bias)
    else:
        require_int8(graph, op, inp, filt, output)
        if bias is not None and bias.dtype != "int32":
            raise INT32_BIAS.refusal(op, f"has a {bias.dtype} bias")
    for tensor in (inp, filt, output):
        if len(tensor.shape) != 4:
            raise NHWC.refusal(op, f"has tensor {shorten(tensor.name)!r} of shape {list(tensor.shape)}")
    require_symmetric(op, filt)
    quant = filt.quantization
    channels = filt.shape[channel_axis]
    if quant.per_channel and (quant.axis != channel_axis or quant.scale.size != channels):
        raise MalformedOperator(
            f"{op.opcode} (node {op.index}): filter {shorten(filt.name)!r} has {quant.scale.size} scales along axis "
            f"{quant.axis}; expected {channels} along axis {channel_axis}")
    return inp, filt, bias, output


def conv_params_initializer(op: Operator, inp: Tensor, filt: Tensor, output: Tensor) -> str:
    """tp_conv_params initializer: offsets, geometry, clamp range."""
    act_min, act_max = fused_activation(op, output)
    stride, dilation, padding = _geometry(op, inp, filt, output)
    return (f"{{{-inp.zero_point}, {output.zero_point}, {stride}, {dilation}, {padding}, "
            f"{{{act_min}, {act_max}}}}}")


def inplace_ring_rows(inp: Tensor, filt: Tensor, output: Tensor, stride_h: int, pad_h: int, dilation_h: int,
                      bottom_up: bool) -> int:
    """Ring rows tp_conv_rows_inplace needs: the most computed output rows waiting at once
    until no later output row reads the input rows their copies overwrite (same rule as the C)."""
    out_rows, out_row = output.shape[1], output.shape[2] * output.shape[3]
    in_row = inp.shape[2] * inp.shape[3]
    reach = (filt.shape[1] - 1) * dilation_h
    pending = most = 0
    for step in range(out_rows):
        row = out_rows - 1 - step if bottom_up else step
        pending += 1
        most = max(most, pending)
        while pending and step < out_rows - 1:
            if bottom_up:
                if (row + pending - 1) * out_row // in_row <= (row - 1) * stride_h - pad_h + reach:
                    break
            elif ((row - pending + 2) * out_row - 1) // in_row >= (row + 1) * stride_h - pad_h:
                break
            pending -= 1
    return most


def inplace_rows(op: Operator, inp: Tensor, filt: Tensor, output: Tensor) -> tuple[int, CStruct] | None:
    """The ring of output rows for running row by row over the input's buffer (batch 1):
    its bytes and its tp_inplace_rows struct."""
    if inp.shape[0] != 1 or output.shape[0] != 1:
        return None
    (stride_h, _), (dilation_h, _), (pad_h, _) = conv_geometry(op, inp, filt, output)
    ring, bottom_up = min((inplace_ring_rows(inp, filt, output, stride_h, pad_h, dilation_h, b), b)
                          for b in (False, True))
    return ring * output.shape[2] * output.shape[3], CStruct("tp_inplace_rows", "rows", "{%d, %d}" % (ring, int(bottom_up)))


def _inplace_offer(op: Operator, kernel: str, inp: Tensor, filt: Tensor, bias_arg: str,
                   output: Tensor) -> InPlace | None:
    """The reference kernel row by row over the input's buffer (tp_conv_inplace.h), if the
    ring costs less than the smaller of the two tensors (what sharing saves)."""
    ring = inplace_rows(op, inp, filt, output)
    if ring is None or ring[0] >= min(inp.nbytes, output.nbytes):
        return None
    ring_bytes, rows = ring
    return InPlace(
        inputs=(inp.index,),
        header="tp_conv_inplace.h",
        sources=(f"reference/{kernel}_inplace.c", "reference/tp_conv_rows_inplace.c"),
        scratch_bytes=ring_bytes,
        structs=[rows],
        call=(f"{kernel}_inplace(&${{p}}params, &${{p}}quant, &${{p}}input_dims, &${{p}}filter_dims, "
              f"$t{filt.index}, {bias_arg}, &${{p}}output_dims, &${{p}}rows, $t{output.index}, "
              "(int8_t *)$scratch);"),
    )


def _conv_step(op: Operator, kernel: str, params: CStruct, inp: Tensor, filt: Tensor, bias: Tensor | None,
               output: Tensor) -> Step:
    """The step both convolutions share: one requant entry per output channel, dims, the call."""
    channels = output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, channels)
    bias_arg = f"$t{bias.index}" if bias is not None else "NULL"
    return Step(
        op=op,
        header="tp_conv.h",
        sources=(f"{kernel}.c",),
        arrays=[CArray("multiplier", "int32_t", multipliers), CArray("shift", "int32_t", shifts)],
        structs=[
            params,
            CStruct("tp_per_channel_requant", "quant", "{${p}multiplier, ${p}shift}"),
            CStruct("tp_dims", "input_dims", dims_initializer(inp.shape)),
            CStruct("tp_dims", "filter_dims", dims_initializer(filt.shape)),
            CStruct("tp_dims", "output_dims", dims_initializer(output.shape)),
        ],
        call=(f"{kernel}(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, $t{filt.index}, {bias_arg}, &${{p}}output_dims, $t{output.index});"),
        inplace=_inplace_offer(op, kernel, inp, filt, bias_arg, output),
    )


@lowers("CONV_2D")
def lower_conv2d(graph: Graph, op: Operator) -> Step:
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=0, int16x8=True)
    out_channels, in_channels = filt.shape[0], inp.shape[3]
    group_depth = filt.shape[3]
    if in_channels % group_depth or out_channels % (in_channels // group_depth) or output.shape[3] != out_channels:
        raise MalformedOperator(
            f"CONV_2D (node {op.index}): {in_channels} input channels, filter depth {group_depth} and "
            f"{out_channels} filters do not form whole groups")
    params = CStruct("tp_conv_params", "params", conv_params_initializer(op, inp, filt, output))
    if is_int16x8(inp):  # 16x8: int64 bias and accumulator, no in-place kernel
        step = _conv_step(op, "tp_conv2d_s16", params, inp, filt, bias, output)
        step.inplace = None
        return step
    return _conv_step(op, "tp_conv2d_s8", params, inp, filt, bias, output)


@lowers("DEPTHWISE_CONV_2D")
def lower_depthwise_conv2d(graph: Graph, op: Operator) -> Step:
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=3, int16x8=True)
    in_channels, out_channels = inp.shape[3], filt.shape[3]
    multiplier = op.options.get("depth_multiplier", 1)
    if filt.shape[0] != 1 or out_channels != in_channels * multiplier or output.shape[3] != out_channels:
        raise MalformedOperator(
            f"DEPTHWISE_CONV_2D (node {op.index}): filter {list(filt.shape)} with depth multiplier {multiplier} "
            f"does not map {in_channels} input channels to {output.shape[3]} outputs")
    params = CStruct("tp_depthwise_conv_params", "params",
                     f"{{{conv_params_initializer(op, inp, filt, output)}, {multiplier}}}")
    if is_int16x8(inp):  # 16x8: int64 bias and accumulator, no in-place kernel
        step = _conv_step(op, "tp_depthwise_conv2d_s16", params, inp, filt, bias, output)
        step.inplace = None
        return step
    return _conv_step(op, "tp_depthwise_conv2d_s8", params, inp, filt, bias, output)


def _dsp_step(base: Step, sources: tuple[str, ...], call: str, arrays: list[CArray] = (),
              scratch_bytes: int = 0, inplace: InPlace | None = None) -> Step:
    """A convolution step on the DSP kernels: the reference step's data, the DSP kernel's call."""
    return Step(op=base.op, header="tp_dsp.h", sources=sources, kernel_dir="dsp", arrays=base.arrays + list(arrays),
                structs=base.structs, call=call, scratch_bytes=scratch_bytes, inplace=inplace)


def _dsp_conv_inplace(op: Operator, inp: Tensor, filt: Tensor, output: Tensor, call: str,
                      scratch_bytes: int, source: str = "dsp/tp_conv2d_s8_dsp_inplace.c") -> InPlace | None:
    """A DSP convolution kernel row by row over the input's buffer (tp_dsp_inplace.h), if the ring
    and the kernel's scratch (after the ring, word-aligned) cost less than sharing saves. `call`
    is the call of the in-place kernel (tp_conv2d_s8_dsp_inplace, defined in `source`) up to the
    ring struct."""
    ring = inplace_rows(op, inp, filt, output)
    if ring is None:
        return None
    ring_bytes = (ring[0] + 3) // 4 * 4
    if ring_bytes + scratch_bytes >= min(inp.nbytes, output.nbytes):
        return None
    return InPlace(
        inputs=(inp.index,),
        header="tp_dsp_inplace.h",
        sources=(source, "reference/tp_conv_rows_inplace.c"),
        scratch_bytes=ring_bytes + scratch_bytes,
        structs=[ring[1]],
        call=f"{call}, &${{p}}rows, $t{output.index}, (int8_t *)$scratch, (int8_t *)$scratch + {ring_bytes});",
    )


def _dsp_pointwise_inplace(inp: Tensor, output: Tensor, call: str, columns_bytes: int) -> InPlace | None:
    """A 1x1 stride-1 convolution over the input's buffer a block of pixels at a time: an even
    count (the matrix kernel's pixel pairs run across row ends) of about one row, the scratch
    the row-by-row kernels take, then (word-aligned) the kernel's columns. `call` is the call of
    tp_conv2d_s8_dsp_pointwise_inplace up to the block."""
    block = output.shape[2] + output.shape[2] % 2
    scratch = (block * output.shape[3] + 3) // 4 * 4 + columns_bytes
    if inp.shape[0] != 1 or scratch >= min(inp.nbytes, output.nbytes):
        return None
    return InPlace(
        inputs=(inp.index,),
        header="tp_dsp_inplace.h",
        sources=("dsp/tp_conv2d_s8_dsp_pointwise_inplace.c",),
        scratch_bytes=scratch,
        call=f"{call}, {block}, $t{output.index}, (int8_t *)$scratch);",
    )


def dsp_channel_words(filter_rows: np.ndarray, bias: np.ndarray | None, input_offset: int, output_offset: int,
                      multipliers: np.ndarray, shifts: np.ndarray, activation: tuple[int, int],
                      fold_offset: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The DSP convolution's TP_DSP_CHANNEL_WORDS per output channel (tp_dsp.h): effective
    bias (the plain bias unless fold_offset), left shift + 1, right shift, rounding; left
    shift + 1 is 0 where the short requantization is not proven exact, so the kernel takes the
    general one there, else 1: the short form needs a right shift, so its left shift is 0.
    Also which channels are constant: a channel whose filter is all zeros
    outputs one value c whatever the input (pruned channels: most of VWW's last layers). Its
    words keep the bias for the general form and give c in the short one once the caller
    makes its high product 0 (a zero multiplier, or a zero accumulator): right shift 1,
    rounding 2c + 1, whatever the accumulator's sign."""
    rows = np.asarray(filter_rows, dtype=np.int64).reshape(len(filter_rows), -1)
    bias_values = np.zeros(len(rows), dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    # The largest |accumulator| any int8 input gives: what the reference sums, before wrapping.
    widest_input = max(abs(-128 + input_offset), abs(127 + input_offset))
    bound = np.abs(rows).sum(axis=1) * widest_input + np.abs(bias_values)
    words = np.zeros((len(rows), 4), dtype=np.int64)
    words[:, 0] = effective_bias(rows, bias, input_offset) if fold_offset else bias_values
    for c, shift in enumerate(np.asarray(shifts, dtype=np.int64)):
        if not rows[c].any():
            constant = multiply_by_quantized_multiplier(int(bias_values[c]), int(multipliers[c]), int(shift))
            words[c, 1:] = 1, 1, 2 * min(max(constant + output_offset, activation[0]), activation[1]) + 1
            continue
        right = -int(shift)
        if right < 1:
            continue
        rounding = (1 << (right - 1)) + output_offset * (1 << right)
        high = int(bound[c]) + 1  # |SMMULR(acc << 1, multiplier)| <= |acc| + 1
        if int(bound[c]) < 1 << 30 and high + 1 + abs(rounding) < 1 << 31:
            words[c, 1:] = 1, right, rounding
    return words.reshape(-1).astype(np.int32), ~rows.any(axis=1)


@lowers("CONV_2D", kernels="dsp")
def lower_conv2d_dsp(graph: Graph, op: Operator) -> Step:
    base = lower_conv2d(graph, op)
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return base  # the reference 16x8 kernel: the DSP set has none
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=0)
    if filt.shape[3] != inp.shape[3] or not filt.is_constant or (bias is not None and not bias.is_constant):
        return base  # grouped convolutions and run-time weights stay on the reference kernel
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, output.shape[3])
    activation = fused_activation(op, output)
    channels, constant = dsp_channel_words(filt.data, bias.data if bias is not None else None, -inp.zero_point,
                                           output.zero_point, multipliers, shifts, activation)
    # A 1x1 filter at stride 1 has no padding: the kernel widens pixels in place, no im2col.
    in_place = filt.shape[1] == filt.shape[2] == 1 and conv_geometry(op, inp, filt, output)[0] == (1, 1)
    run, k = filt.shape[2] * filt.shape[3], filt.shape[1] * filt.shape[2] * filt.shape[3]
    gather = 0 if in_place else run if run % 4 == 0 else (k + 3) // 4 * 4  # a filter row or a column (tp_dsp_im2col)
    scratch_bytes = 16 * -(-k // 4) + gather  # the two widened columns first
    return _dsp_step(
        base, ("tp_conv2d_s8_dsp.c", "tp_dsp_gemm_s8.c", "tp_dsp_gemm_s8_pairs.S"),
        call=(f"tp_conv2d_s8_dsp(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, ${{p}}packed_filter, ${{p}}words, &${{p}}output_dims, $t{output.index}, "
              "(int8_t *)$scratch);"),
        arrays=[CArray("packed_filter", "int32_t", pack_conv_filter(filt.data)),
                CArray("words", "int32_t",
                       pair_words(channels, np.where(constant, 0, multipliers), activation == (-128, 127)))],
        scratch_bytes=scratch_bytes,
        inplace=_dsp_pointwise_inplace(inp, output, columns_bytes=scratch_bytes, call=(
            "tp_conv2d_s8_dsp_pointwise_inplace(&${p}params, &${p}quant, &${p}input_dims, &${p}filter_dims, "
            "${p}packed_filter, ${p}words, &${p}output_dims")) if in_place else _dsp_conv_inplace(
            op, inp, filt, output, scratch_bytes=scratch_bytes, call=(
                "tp_conv2d_s8_dsp_inplace(&${p}params, &${p}quant, &${p}input_dims, &${p}filter_dims, "
                "${p}packed_filter, ${p}words, &${p}output_dims")),
    )


def pair_words(channels: np.ndarray, multipliers: np.ndarray, int8_range: bool) -> np.ndarray:
    """dsp_channel_words as tp_dsp_gemm_s8 reads them (TP_DSP_PAIR_WORDS in tp_dsp.h): per pair of
    channels both biases, then per channel left + 1, multiplier, rounding, right, with an odd
    count's last channel paired with a zero channel. left + 1 is 0 for both channels of a pair
    (the matrix kernel's general output) where either needs tp_dsp_requantize, for the last pair
    of an odd count, and everywhere when the activation clamps inside the int8 range."""
    words = channels.reshape(-1, 4).astype(np.int64)
    rows = np.zeros((len(words) + len(words) % 2, 5), dtype=np.int64)
    rows[:len(words)] = np.column_stack([words[:, 0], words[:, 1], multipliers, words[:, 3], words[:, 2]])
    pairs = rows.reshape(-1, 2, 5)
    pairs[(pairs[:, :, 1] == 0).any(axis=1), :, 1] = 0
    if not int8_range:
        pairs[:, :, 1] = 0
    return np.concatenate([pairs[:, :, 0], pairs[:, :, 1:].reshape(-1, 8)], axis=1).reshape(-1).astype(np.int32)


def pack_conv_filter(filt: np.ndarray) -> np.ndarray:
    """An [out_c][kh][kw][in_c] int8 filter in tp_dsp_gemm_s8's order (tp_dsp.h): channels
    zero-padded to whole words and to an even count; per pair of channels, per word, the first
    channel's then the second's."""
    out_c, k = len(filt), filt[0].size
    padded = np.zeros((out_c + out_c % 2, -(-k // 4) * 4), dtype=np.int8)
    padded[:out_c, :k] = filt.reshape(out_c, k)
    pairs = padded.reshape(len(padded) // 2, 2, -1, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(pairs).reshape(-1).view("<i4").astype(np.int32)


@lowers("DEPTHWISE_CONV_2D", kernels="dsp")
def lower_depthwise_conv2d_dsp(graph: Graph, op: Operator) -> Step:
    base = lower_depthwise_conv2d(graph, op)
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return base  # the reference 16x8 kernel: the DSP set has none
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=3)
    if not filt.is_constant or (bias is not None and not bias.is_constant):
        return base  # run-time weights cannot be packed ahead of time
    multiplier = op.options.get("depth_multiplier", 1)
    geometry = DepthwiseGeometry.of(op, inp, filt, output)
    # With a multiplier above 1 the planes stay along image rows, which their in-place offer needs.
    frame, layout = geometry.plane_layout(transpose=multiplier == 1)
    scratch_bytes = frame.scratch_bytes(layout, planes=min(4, inp.shape[3]))
    inplace = None
    if multiplier != 1:
        # The planes take 3x3 filters (their SIMD rows); other filters (micro_speech's 10x8, which the
        # planes would take tap by tap) go to the matrix kernel, by input channel. Outputs outgrow the
        # input pixels they replace, so over one buffer either goes one output row at a time through
        # a ring; where the planes' scratch is too large for that to pay and the matrix kernel's is
        # not (small layers), the matrix kernel keeps the arena the reference kernel's offer gives.
        matrix = _matrix_depthwise_dsp(op, base, inp, filt, bias, output, multiplier)
        inplace = _dsp_conv_inplace(
            op, inp, filt, output, scratch_bytes=scratch_bytes, source="dsp/tp_depthwise_conv2d_s8_dsp_inplace.c",
            call=("tp_depthwise_conv2d_s8_dsp_inplace(&${p}params, &${p}quant, &${p}input_dims, "
                  "&${p}filter_dims, ${p}packed_filter, ${p}channels, &${p}output_dims, &${p}layout"))
        if not frame.simd or (inplace is None and matrix.inplace is not None):
            return matrix
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, output.shape[3])
    bias_values = bias.data.reshape(-1) if bias is not None else None
    filt_per_channel = np.moveaxis(filt.data.reshape(filt.shape[1:]), 2, 0).astype(np.int64)  # [c][kh][kw]
    # The kernel adds the input offset while unpacking and pads with zeros: plain bias. The short
    # requantization's doubling of the accumulator (left + 1 = 1) moves into the weights and bias
    # (int8 weights doubled stay within the int16 halves SMLAD multiplies).
    channels, constant = dsp_channel_words(filt_per_channel, bias_values, -inp.zero_point, output.zero_point,
                                           multipliers, shifts, fused_activation(op, output), fold_offset=False)
    channels = channels.reshape(-1, 4).astype(np.int64)
    channels[constant, 0] = 0  # a zero accumulator: the short form's high product is 0
    short = channels[:, 1] == 1
    channels[short, 0] *= 2
    filt_per_channel[short] *= 2
    if frame.transposed:
        filt_per_channel = filt_per_channel.transpose(0, 2, 1)
    call = (f"tp_depthwise_conv2d_s8_dsp(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
            f"&${{p}}filter_dims, ${{p}}packed_filter, ${{p}}channels, &${{p}}output_dims, $t{output.index}, "
            "&${p}layout, (int8_t *)$scratch);")
    step = _dsp_step(
        base, ("tp_depthwise_conv2d_s8_dsp.c",), call=call,
        arrays=[CArray("packed_filter", "int32_t", pack_depthwise_filter(filt_per_channel, frame.simd)),
                CArray("channels", "int32_t", channels.reshape(-1).astype(np.int32))],
        scratch_bytes=scratch_bytes, inplace=inplace)
    step.structs.append(CStruct("tp_dsp_dw_layout", "layout", "{%d, %d, %d, %d}" % (*layout, frame.transposed)))
    if multiplier == 1 and inp.shape[0] == 1 and frame.reads_lines_before_overwriting(layout):
        # The same call over one buffer: the kernel reads each input line once, before any output lands on it.
        step.inplace = InPlace(inputs=(inp.index,), scratch_bytes=step.scratch_bytes)
    return step


def _matrix_depthwise_dsp(op: Operator, base: Step, inp: Tensor, filt: Tensor, bias: Tensor | None,
                          output: Tensor, multiplier: int) -> Step:
    """tp_depthwise_conv2d_s8_dsp_mult (tp_dsp.h): per input channel, a convolution of that channel
    alone by its `multiplier` filters on the DSP matrix kernel, each channel's filters packed on
    their own with their own output words (effective biases: the input offset folded in)."""
    in_channels, out_channels = inp.shape[3], output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, out_channels)
    activation = fused_activation(op, output)
    k = filt.shape[1] * filt.shape[2]
    rows = filt.data.reshape(k, out_channels).T  # [out_c][kh * kw], taps row by row
    channels, constant = dsp_channel_words(rows, bias.data.reshape(-1) if bias is not None else None,
                                           -inp.zero_point, output.zero_point, multipliers, shifts, activation)
    channels = channels.reshape(out_channels, 4)
    short_multipliers = np.where(constant, 0, multipliers)  # a dead filter's high product is 0
    groups = [slice(c * multiplier, (c + 1) * multiplier) for c in range(in_channels)]
    packed = np.concatenate([pack_conv_filter(rows[g]) for g in groups])
    words = np.concatenate([pair_words(channels[g].reshape(-1), short_multipliers[g], activation == (-128, 127))
                            for g in groups])
    scratch_bytes = 20 * -(-k // 4) + 4  # two widened columns, then the gather buffer (and its overrun)
    return _dsp_step(
        base, ("tp_depthwise_conv2d_s8_dsp_mult.c", "tp_dsp_gemm_s8.c", "tp_dsp_gemm_s8_pairs.S"),
        call=(f"tp_depthwise_conv2d_s8_dsp_mult(&${{p}}params, &${{p}}quant, &${{p}}input_dims, $t{inp.index}, "
              f"&${{p}}filter_dims, ${{p}}packed_filter, ${{p}}words, &${{p}}output_dims, $t{output.index}, "
              "(int8_t *)$scratch);"),
        arrays=[CArray("packed_filter", "int32_t", packed), CArray("words", "int32_t", words)],
        scratch_bytes=scratch_bytes,
        inplace=_dsp_conv_inplace(
            op, inp, filt, output, scratch_bytes=scratch_bytes, source="dsp/tp_depthwise_conv2d_s8_dsp_mult_inplace.c",
            call=("tp_depthwise_conv2d_s8_dsp_mult_inplace(&${p}params, &${p}quant, &${p}input_dims, "
                  "&${p}filter_dims, ${p}packed_filter, ${p}words, &${p}output_dims")))


@dataclass(frozen=True)
class DepthwiseGeometry:
    """A depthwise convolution as tp_depthwise_conv2d_s8_dsp's planes see it (tp_dsp.h): `rows`
    across the planes' lines, `cols` along them; image rows are lines unless transposed."""

    rows: int  # input extent across lines
    cols: int  # input extent along a line
    k_rows: int
    k_cols: int
    stride: tuple[int, int]  # (across, along)
    dilation: tuple[int, int]
    pad: tuple[int, int]
    out_rows: int
    out_cols: int
    transposed: bool = False

    # Outputs per band the kernel amortizes its per-channel set-up over.
    BAND_OUTPUTS = 64
    # Narrow images go along columns when all their planes fit in this many bytes (one band).
    TRANSPOSED_PLANE_BYTES = 4096

    @classmethod
    def of(cls, op: Operator, inp: Tensor, filt: Tensor, output: Tensor) -> "DepthwiseGeometry":
        stride, dilation, pad = conv_geometry(op, inp, filt, output)
        return cls(inp.shape[1], inp.shape[2], filt.shape[1], filt.shape[2], stride, dilation, pad,
                   output.shape[1], output.shape[2])

    def flipped(self) -> "DepthwiseGeometry":
        return DepthwiseGeometry(self.cols, self.rows, self.k_cols, self.k_rows, self.stride[::-1],
                                 self.dilation[::-1], self.pad[::-1], self.out_cols, self.out_rows, not self.transposed)

    @property
    def simd(self) -> bool:
        """Whether the kernel takes the filter by SIMD pairs: 3x3, stride 1 or 2 and no dilation along lines."""
        return self.k_rows == self.k_cols == 3 and self.dilation[1] == 1 and self.stride[1] in (1, 2)

    def window(self, band_rows: int) -> int:
        """Padded input lines one band of output lines reads."""
        return (band_rows - 1) * self.stride[0] + (self.k_rows - 1) * self.dilation[0] + 1

    def layout(self, band_rows: int) -> tuple[int, int, int]:
        """(band_rows, plane_rows, line), lines long enough for the SIMD rows' word reads past the last tap."""
        line = max(self.pad[1] + self.cols, self.out_cols * self.stride[1] + (self.k_cols - 1) * self.dilation[1] + 2)
        return band_rows, self.window(band_rows), line + line % 2

    def plane_layout(self, transpose: bool = True) -> tuple["DepthwiseGeometry", tuple[int, int, int]]:
        """The frame and layout the kernel runs: lines along image rows in bands of the fewest rows
        holding BAND_OUTPUTS outputs, or (if `transpose`) along columns (one band) for images narrower
        than 8 outputs and taller than wide, where four-output steps would otherwise leave most rows a
        short tail."""
        if transpose and self.out_cols < 8 and self.out_rows > self.out_cols:
            flipped = self.flipped()
            whole = flipped.layout(flipped.out_rows)
            if flipped.scratch_bytes(whole) <= self.TRANSPOSED_PLANE_BYTES:
                return flipped, whole
        return self, self.layout(min(self.out_rows, -(-self.BAND_OUTPUTS // self.out_cols)))

    def scratch_bytes(self, layout: tuple[int, int, int], planes: int = 4) -> int:
        """`planes` int16 planes: one per input channel, up to four."""
        _, plane_rows, line = layout
        return 2 * planes * plane_rows * line

    def reads_lines_before_overwriting(self, layout: tuple[int, int, int]) -> bool:
        """Whether the kernel, run with output == input, unpacks every input line before outputs
        land on it: the C's band loop, replayed. With lines along image rows, outputs before band
        row o0 cover the input bytes of the first o0 * out_cols pixels (a pixel has as many
        channels in and out); a transposed layout's one band reads everything before writing."""
        band_rows, plane_rows, _ = layout
        if self.transposed:
            return band_rows >= self.out_rows
        base = loaded = 0
        for o0 in range(0, self.out_rows, band_rows):
            rows = min(band_rows, self.out_rows - o0)
            first = o0 * self.stride[0]
            end = first + self.window(rows)
            if end - base > plane_rows:
                loaded, base = max(loaded, first), first
            for padded_row in range(max(loaded, first), end):
                row = padded_row - self.pad[0]
                if 0 <= row < self.rows and row * self.cols < o0 * self.out_cols:
                    return False
            loaded = end
        return True


def _halfword_pairs(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """int16 pairs as int32 words, low in the low half (what SMLAD multiplies lane by lane)."""
    words = (low.astype(np.int64) & 0xFFFF) | (high.astype(np.int64) << 16)
    return ((words + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def pack_depthwise_filter(filt: np.ndarray, pairs: bool) -> np.ndarray:
    """A [c][k_rows][k_cols] depthwise filter in tp_depthwise_conv2d_s8_dsp's order (see tp_dsp.h):
    channel after channel, each three-tap filter line as the pairs (w0, w1), (w1, w2) when
    `pairs`, else one word per tap."""
    if pairs:
        lines = np.stack([_halfword_pairs(filt[..., 0], filt[..., 1]),
                          _halfword_pairs(filt[..., 1], filt[..., 2])], axis=-1)
        return lines.reshape(-1)
    return filt.reshape(-1).astype(np.int32)
