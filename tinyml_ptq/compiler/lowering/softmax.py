"""SOFTMAX (int8 -> int8 or int16) and LOG_SOFTMAX (int8 -> int8), as TFLite's gemmlowp fixed-point references."""

from __future__ import annotations

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator
from . import CArray, CStruct, MalformedOperator, Step, constraint, gemmlowp_math as gl, lowers
from .common import RESCALE_RANGE, is_int16x8, require_int8, require_int16x8

SCALED_DIFF_INTEGER_BITS = 5  # the exp() input is Q5.26
MAX_DEPTH = 4095  # each element adds up to 2^19 to the Q12.19 int32 sum of exponentials

SOFTMAX_OUTPUT = constraint("SOFTMAX", doc="the output quantization TFLite's softmax fixes: scale 1/256 and zero point "
                                           "-128 (int8), 1/65536 and -32768 (int8 -> int16), 1/32768 and 0 (int16x8)")
LOG_SOFTMAX_OUTPUT = constraint("LOG_SOFTMAX", doc="output scale 16/256 and zero point 127 (TFLite's int8 log softmax)")
SOFTMAX_RANK = constraint("SOFTMAX", "LOG_SOFTMAX", doc="an input of rank 1 or more (normalized along its last axis)")
SOFTMAX_DEPTH = constraint("SOFTMAX", "LOG_SOFTMAX",
                           doc=f"at most {MAX_DEPTH} classes with an int8 input (more could overflow the int32 sum "
                               "of exponentials)")
SOFTMAX_INPUT_SCALE = constraint("SOFTMAX", "LOG_SOFTMAX",
                                 doc="beta * input scale above 2^-26, which TFLite's fixed-point softmax and log "
                                     "softmax rescale to Q5.26")


def softmax_input_rescale(op: Operator, beta: float, input_scale: float) -> tuple[int, int]:
    """PreprocessSoftmaxScaling: beta * input_scale * 2^26 in double, capped at 2^31 - 1, as the
    (multiplier, left shift) that takes distances below the row maximum to Q5.26."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)
    if real <= 1.0:
        raise SOFTMAX_INPUT_SCALE.refusal(op, f"has input scale {input_scale:g} times beta {beta:g}, too small for "
                                              f"TFLite's fixed-point {op.opcode.lower().replace('_', ' ')}")
    return quant_math.quantize_multiplier(real)


def softmax_exp_table(multiplier: int, left_shift: int) -> np.ndarray:
    """exp((x - row_max) * beta * input_scale) in Q0.31 for each distance k = row_max - x in 0..255,
    from the input rescale of `softmax_input_rescale`.

    diff_min from CalculateInputRadius, then MultiplyByQuantizedMultiplierGreaterThanOne and
    exp_on_negative_values exactly as the reference runs them per element.
    Entries TFLite skips (difference below diff_min) are 0, which yields the same
    sum and the same -128 output as skipping.
    """
    diff_min = -gl.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    table = np.zeros(256, dtype=np.int64)
    for k in range(256):
        if -k >= diff_min:
            scaled = gl.multiply_by_quantized_multiplier_greater_than_one(-k, multiplier, left_shift)
            table[k] = gl.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    return table.astype(np.int32)


def _round_half_away(x: np.float32) -> np.float32:
    """TfLiteRound (std::round) on a float."""
    v = float(x)
    return np.float32(np.copysign(np.floor(abs(v) + 0.5), v))


def lut_populate_int16(input_scale: np.float32, input_zero_point: int, output_scale: np.float32,
                       transform) -> np.ndarray:
    """LUTPopulateInt16<float> with output zero point 0: 512 interpolation bases, corrected at each
    segment's midpoint, and one last value; every step in float as TFLite computes it."""
    f = np.float32
    input_min = f(input_scale * f(-32768 - input_zero_point))
    input_max = f(input_scale * f(32767 - input_zero_point))
    output_min = f(output_scale * f(-32768))
    output_max = f(output_scale * f(32767))
    steps = 512
    step = f(f(input_max - input_min) / f(steps))
    half_step = f(step / f(2))
    scaling_inv = f(f(65536) / f(output_max - output_min))
    lut = np.zeros(steps + 1, dtype=np.int16)
    for i in range(steps):
        at = f(input_min + f(f(i) * step))
        val = transform(at)
        val_midpoint = transform(f(at + half_step))
        val_next = transform(f(input_min + f(f(i + 1) * step)))
        sample = _round_half_away(f(val * scaling_inv))
        midpoint_interp = _round_half_away(f(f(f(val_next * scaling_inv) + sample) / f(2)))
        midpoint = _round_half_away(f(val_midpoint * scaling_inv))
        bias = _round_half_away(f(f(midpoint_interp - midpoint) / f(2)))
        lut[i] = int(min(max(f(sample - bias), f(-32768)), f(32767)))
    lut[steps] = int(min(max(_round_half_away(f(transform(input_max) * scaling_inv)), f(-32768)), f(32767)))
    return lut


def _expf(x: np.float32) -> np.float32:
    return np.float32(np.exp(np.float64(x)))  # std::exp(float), correctly rounded


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return np.float32(np.float32(1.0) / np.float32(np.float32(1.0) + x))


_RANGE = 65535  # int16 max - min


def softmax_s16_tables() -> tuple[np.ndarray, np.ndarray]:
    """The exp() table over [-10, 0] and the 1/(1+x) table over [0, 1] TFLM builds for int16 softmax."""
    f = np.float32
    exp_lut = lut_populate_int16(f(f(10.0) / f(_RANGE)), 32767, f(f(2.0) / f(_RANGE)), _expf)
    recip_lut = lut_populate_int16(f(f(1.0) / f(_RANGE)), -32768, f(f(2.0) / f(_RANGE)), _one_over_one_plus_x)
    return exp_lut, recip_lut


def _lower_softmax_s16(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int16x8(graph, op, (inp, output))
    if abs(float(np.float32(output.scale)) - 1.0 / 32768) > 0.001 / 32768:
        raise SOFTMAX_OUTPUT.refusal(op, f"has int16x8 output scale {output.scale:g}")
    if not inp.shape:
        raise SOFTMAX_RANK.refusal(op, "has a scalar input")
    depth = inp.shape[-1]
    # input scale * beta / (10 / 65535) in double: the row-max distances to [-65535, 0] ~ [-10, 0]
    real = float(np.float32(inp.scale)) * float(np.float32(op.options.get("beta", 1.0))) / (10.0 / 65535.0)
    multiplier, shift = quant_math.quantize_multiplier(real)
    if shift > 30:
        raise RESCALE_RANGE.refusal(op, f"has int16 input scale {inp.scale:g}, too large for TFLite's int16 softmax "
                                        f"(input rescale factor {real:g})")
    exp_lut, recip_lut = softmax_s16_tables()
    return Step(
        op=op,
        header="tp_softmax.h",
        sources=("tp_softmax_s16.c",),
        arrays=[CArray("exp_lut", "int16_t", exp_lut), CArray("recip_lut", "int16_t", recip_lut)],
        structs=[CStruct("tp_softmax_s16_params", "params", f"{{{multiplier}, {shift}}}")],
        call=(f"tp_softmax_s16(&${{p}}params, ${{p}}exp_lut, ${{p}}recip_lut, {inp.num_elements // depth}, {depth}, "
              f"$t{inp.index}, $t{output.index});"),
    )


@lowers("SOFTMAX")
def lower_softmax(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if is_int16x8(inp):
        return _lower_softmax_s16(graph, op)
    int16_output = output.dtype == "int16" and output.quantization is not None and inp.dtype == "int8"
    require_int8(graph, op, inp, *(() if int16_output else (output,)))
    if int16_output:  # int8 -> int16, as TFLM evaluates it (scale 1/65536 within TFLM's tolerance)
        if output.zero_point != -32768 or abs(float(np.float32(output.scale)) - 1.0 / 65536) > 0.001 / 65536:
            raise SOFTMAX_OUTPUT.refusal(op, f"has an int16 output of an int8 input with scale {output.scale:g}, "
                                             f"zero point {output.zero_point}")
    elif output.zero_point != -128 or np.float32(output.scale) != np.float32(1.0 / 256):
        raise SOFTMAX_OUTPUT.refusal(op, f"has output scale {output.scale:g}, zero point {output.zero_point}")
    if not inp.shape:
        raise SOFTMAX_RANK.refusal(op, "has a scalar input")
    depth = inp.shape[-1]
    if depth > MAX_DEPTH:
        raise SOFTMAX_DEPTH.refusal(op, f"runs over {depth} classes")
    table = softmax_exp_table(*softmax_input_rescale(op, op.options.get("beta", 1.0), inp.scale))
    return Step(
        op=op,
        header="tp_softmax.h",
        sources=("tp_softmax_s8.c",),
        arrays=[CArray("exp", "int32_t", table)],
        call=(f"tp_softmax_s8_s16(${{p}}exp, {inp.num_elements // depth}, {depth}, $t{inp.index}, "
              f"$t{output.index});" if int16_output else
              f"tp_softmax_s8(${{p}}exp, {inp.num_elements // depth}, {depth}, $t{inp.index}, $t{output.index});"),
    )


LOG_SOFTMAX_OUTPUT_SCALE, LOG_SOFTMAX_OUTPUT_ZERO_POINT = 16.0 / 256, 127


@lowers("LOG_SOFTMAX")
def lower_log_softmax(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    if output.zero_point != LOG_SOFTMAX_OUTPUT_ZERO_POINT or np.float32(output.scale) != LOG_SOFTMAX_OUTPUT_SCALE:
        raise LOG_SOFTMAX_OUTPUT.refusal(op, f"has output scale {output.scale:g}, zero point {output.zero_point}")
    if not inp.shape:
        raise SOFTMAX_RANK.refusal(op, "has a scalar input")
    if tuple(inp.shape) != tuple(output.shape):
        raise MalformedOperator(f"LOG_SOFTMAX (node {op.index}) input {list(inp.shape)} and output "
                                f"{list(output.shape)} must have one non-scalar shape")
    depth = inp.shape[-1]
    if depth > MAX_DEPTH:
        raise SOFTMAX_DEPTH.refusal(op, f"runs over {depth} classes")
    # PreprocessLogSoftmaxScalingExp with beta 1: the softmax input rescale (the exponentials
    # are softmax's), and its inverse as a multiplier below one.
    multiplier, left_shift = softmax_input_rescale(op, 1.0, inp.scale)
    divisor, divisor_shift = quant_math.quantize_multiplier((1 << (31 - left_shift)) / float(multiplier))
    diff_min = -gl.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    return Step(
        op=op,
        header="tp_softmax.h",
        sources=("tp_log_softmax_s8.c",),
        arrays=[CArray("exp", "int32_t", softmax_exp_table(multiplier, left_shift))],
        structs=[CStruct("tp_log_softmax_params", "params",
                         f"{{{multiplier}, {left_shift}, {divisor}, {divisor_shift}, {diff_min}}}")],
        call=(f"tp_log_softmax_s8(&${{p}}params, ${{p}}exp, {inp.num_elements // depth}, {depth}, "
              f"$t{inp.index}, $t{output.index});"),
    )
