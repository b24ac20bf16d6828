"""DEPTHWISE_CONV_2D on the Helium (MVE) kernels: tp_depthwise_conv2d_s8_helium (tp_helium_dw.h)
for int8 with depth multiplier 1 and constant weights; everything else as the DSP set lowers it."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from . import CArray, InPlace, Step, lowers
from .common import effective_bias, is_int16x8, per_channel_requant
from .conv import check_conv_tensors, inplace_rows, lower_depthwise_conv2d, lower_depthwise_conv2d_dsp

GROUP = 8  # channels per vector (int16 lanes)


def helium_dw_words(filt_per_channel: np.ndarray, bias: np.ndarray | None, input_offset: int,
                    multipliers: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """TP_HELIUM_DW_GROUP_WORDS per group of eight channels (tp_helium_dw.h): plain bias, effective
    bias, multiplier, left shift, right shift (<= 0), each the even channels' four lanes then the
    odd ones'; zero channels pad the last group."""
    channels = len(filt_per_channel)
    padded = -(-channels // GROUP) * GROUP
    fields = np.zeros((5, padded), dtype=np.int64)
    if bias is not None:
        fields[0, :channels] = bias
    fields[1, :channels] = effective_bias(filt_per_channel, bias, input_offset)
    fields[2, :channels] = multipliers
    fields[3, :channels] = np.maximum(shifts, 0)
    fields[4, :channels] = np.minimum(shifts, 0)
    # [field][group][lane][parity] -> [group][field][parity][lane]
    return fields.reshape(5, -1, GROUP // 2, 2).transpose(1, 0, 3, 2).reshape(-1).astype(np.int32)


def pack_helium_dw_filter(filt: np.ndarray) -> np.ndarray:
    """A [1][kh][kw][c] filter as [c8 / 8][kh][kw][8]: each group of eight channels' taps together."""
    _, kh, kw, channels = filt.shape
    padded = np.zeros((kh, kw, -(-channels // GROUP) * GROUP), dtype=np.int8)
    padded[:, :, :channels] = filt[0]
    return np.ascontiguousarray(padded.reshape(kh, kw, -1, GROUP).transpose(2, 0, 1, 3)).reshape(-1)


@lowers("DEPTHWISE_CONV_2D", kernels="helium")
def lower_depthwise_conv2d_helium(graph: Graph, op: Operator) -> Step:
    if is_int16x8(graph.tensors[op.inputs[0]]) or op.options.get("depth_multiplier", 1) != 1:
        return lower_depthwise_conv2d_dsp(graph, op)
    inp, filt, bias, output = check_conv_tensors(graph, op, channel_axis=3)
    if not filt.is_constant or (bias is not None and not bias.is_constant) or inp.shape[3] != output.shape[3]:
        return lower_depthwise_conv2d_dsp(graph, op)
    base = lower_depthwise_conv2d(graph, op)  # checks the shapes; its params and dims structs
    channels = output.shape[3]
    multipliers, shifts = per_channel_requant(inp.scale, filt.quantization.scale, output.scale, channels)
    filt_per_channel = filt.data.reshape(-1, channels).T  # [c][kh * kw]
    words = helium_dw_words(filt_per_channel, bias.data.reshape(-1) if bias is not None else None,
                            -inp.zero_point, multipliers, shifts)
    structs = [s for s in base.structs if s.name != "quant"]
    inplace = None
    ring = inplace_rows(op, inp, filt, output)
    if ring is not None and ring[0] < min(inp.nbytes, output.nbytes):  # as the reference kernel's offer
        inplace = InPlace(
            inputs=(inp.index,), header="tp_helium_dw.h", scratch_bytes=ring[0], structs=[ring[1]],
            sources=("helium/tp_depthwise_conv2d_s8_helium_inplace.c", "helium/tp_depthwise_conv2d_s8_helium.c",
                     "reference/tp_conv_rows_inplace.c"),
            call=(f"tp_depthwise_conv2d_s8_helium_inplace(&${{p}}params, &${{p}}input_dims, &${{p}}filter_dims, "
                  f"${{p}}filter, ${{p}}words, &${{p}}output_dims, &${{p}}rows, $t{output.index}, "
                  "(int8_t *)$scratch);"))
    return Step(
        op=op, header="tp_helium_dw.h", sources=("tp_depthwise_conv2d_s8_helium.c",), kernel_dir="helium",
        arrays=[CArray("filter", "int8_t", pack_helium_dw_filter(filt.data)), CArray("words", "int32_t", words)],
        structs=structs,
        call=(f"tp_depthwise_conv2d_s8_helium(&${{p}}params, &${{p}}input_dims, $t{inp.index}, &${{p}}filter_dims, "
              f"${{p}}filter, ${{p}}words, &${{p}}output_dims, $t{output.index});"),
        inplace=inplace,
    )
