"""LOGISTIC, TANH and RSQRT, int8: a 256-entry table per operator; LOGISTIC and TANH also
int16x8, on TFLite's own int16 kernel.

TFLM evaluates LOGISTIC and TANH with gemmlowp fixed-point logistic / tanh on a
Q4.27 rescaled input, and RSQRT with a fixed-point Newton-Raphson inverse square
root. Every int8 input value goes through exactly that integer arithmetic here,
at generation time, so the device only looks results up. In int16 the device runs
TFLite's interpolation in its sigmoid table (tp_lut.h); only the input rescale is
computed here.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, Step, constraint, gemmlowp_math as gl, lowers
from .common import elementwise_inplace, is_int16x8, require_int8, require_int16x8

INPUT_INTEGER_BITS = 4  # the rescaled input is Q4.27
S16_INPUT_INTEGER_BITS = 3  # TFLM's int16 LOGISTIC / TANH see a Q3.12 input
S16_OUTPUT_FRACTIONAL_BITS = 15  # and give Q0.15
RSQRT_HEADROOM_SHIFT = 20  # RsqrtEvalQuantized keeps 1/sqrt(x) in an integer with 2^20 headroom

SIGMOID_INPUT_SCALE = constraint(
    "LOGISTIC", "TANH",
    doc="an int8 input scale of at least 2^-28 (TFLite rescales the input to Q4.27 by a left shift), an int16 "
        f"one of at most {32767 / (3 * 4096):.4g} (TFLite's int16 LOGISTIC and TANH rescale it in 16 bits)")
SIGMOID_OUTPUT = constraint("LOGISTIC", "TANH",
                            doc="the fixed output encoding TFLite's kernels write: zero point -128 (int8 LOGISTIC) "
                                f"or 0 (int8 TANH), scale 2^-{S16_OUTPUT_FRACTIONAL_BITS} (int16)")
RSQRT_RESCALE = constraint("RSQRT", doc=f"input and output scales whose rescale stays at or above 2^-31 once the "
                                        f"reference takes its 2^{RSQRT_HEADROOM_SHIFT} headroom out of it")


def _input_rescale(op: Operator, inp: Tensor) -> tuple[int, int, int]:
    """(multiplier, left shift, input radius) as TFLM's Prepare computes them: frexp of
    input_scale * 2^27 rounded to 31 bits, without QuantizeMultiplier's 2^31 fix-up."""
    fraction, left_shift = math.frexp(float(np.float32(inp.scale)) * (1 << (31 - INPUT_INTEGER_BITS)))
    if left_shift < 0:
        raise SIGMOID_INPUT_SCALE.refusal(op, f"has int8 input scale {inp.scale:g}")
    multiplier = quant_math.round_half_away(fraction * (1 << 31))
    return multiplier, left_shift, gl.calculate_input_radius(INPUT_INTEGER_BITS, left_shift)


def lut_table(op: Operator, inp: Tensor) -> np.ndarray:
    """The int8 result for each input byte, indexed by the byte read as unsigned."""
    multiplier, left_shift, radius = _input_rescale(op, inp)
    table = np.zeros(256, dtype=np.int64)
    for q in range(-128, 128):
        x = q - inp.zero_point
        if x <= -radius:
            value = -128
        elif x >= radius:
            value = 127
        else:
            x_q4 = gl.multiply_by_quantized_multiplier(x, multiplier, left_shift)
            if op.opcode == "LOGISTIC":
                # Q0.31 down to 1/256 steps, output zero point -128.
                value = gl.rounding_divide_by_pot(gl.logistic(x_q4, INPUT_INTEGER_BITS), 31 - 8) - 128
            else:
                # Q0.31 down to 1/128 steps, output zero point 0.
                value = gl.rounding_divide_by_pot(gl.tanh(x_q4, INPUT_INTEGER_BITS), 31 - 7)
            value = min(max(value, -128), 127)
        table[q & 0xFF] = value
    return table.astype(np.int8)


def checked_log2(value: float) -> tuple[int, bool]:
    """CheckedLog2: log2 of the float32 value rounded (ties away), and whether it is within
    1e-3 of that integer, i.e. the value is a power of two."""
    exact = math.log(float(np.float32(value))) / math.log(2.0)
    rounded = quant_math.round_half_away(exact)
    return rounded, abs(exact - rounded) < 1e-3


def sigmoid_s16_rescale(op: Operator, inp: Tensor) -> tuple[int, int]:
    """(multiplier, right shift) taking an int16 input to the table's steps of 1/(3 * 4096), as the
    int16 Prepare of LOGISTIC / TANH computes it, with its power-of-two case already folded
    into the pair the kernel then uses (3 << shift, no shift)."""
    power, is_power = checked_log2(inp.scale)
    left_shift = (15 - S16_INPUT_INTEGER_BITS) + power
    # Q3.12 (and for TANH Q4.11) inputs need no multiplier of their own.
    if is_power and left_shift in ((0, 1) if op.opcode == "TANH" else (0,)):
        return 3 << left_shift, 0
    # Otherwise: scale * 3 * 4096 in double, doubled up to just above 2^14 (at most 31 times),
    # truncated.
    multiplier = float(np.float32(inp.scale)) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if multiplier > 32767.0:
        raise SIGMOID_INPUT_SCALE.refusal(op, f"has int16 input scale {inp.scale:g}")
    return int(multiplier), shift


def _lower_sigmoid_s16(graph: Graph, op: Operator, inp: Tensor, output: Tensor) -> Step:
    """int16x8 LOGISTIC and TANH: TFLite's int16 kernel (tp_logistic_s16, tp_tanh_s16)."""
    require_int16x8(graph, op, (inp, output))
    power, is_power = checked_log2(output.scale)
    if not is_power or power != -S16_OUTPUT_FRACTIONAL_BITS:
        # The reference ignores the output quantization and writes Q0.15; TFLM refuses any other.
        raise SIGMOID_OUTPUT.refusal(op, f"has int16 output scale {output.scale:g}")
    multiplier, shift = sigmoid_s16_rescale(op, inp)
    kernel = "tp_logistic_s16" if op.opcode == "LOGISTIC" else "tp_tanh_s16"
    return Step(
        op=op,
        header="tp_lut.h",
        sources=("tp_logistic_tanh_s16.c",),
        structs=[CStruct("tp_sigmoid_s16_params", "params", f"{{{multiplier}, {shift}}}")],
        call=f"{kernel}(&${{p}}params, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


@lowers("LOGISTIC", "TANH")
def lower_lut_activation(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if is_int16x8(inp):
        return _lower_sigmoid_s16(graph, op, inp, output)
    require_int8(graph, op, inp, output)
    expected_zero_point = -128 if op.opcode == "LOGISTIC" else 0
    if output.zero_point != expected_zero_point:
        # The reference ignores the output quantization and writes this fixed encoding.
        raise SIGMOID_OUTPUT.refusal(op, f"has int8 output zero point {output.zero_point}")
    return Step(
        op=op,
        header="tp_lut.h",
        sources=("tp_lut_s8.c",),
        arrays=[CArray("table", "int8_t", lut_table(op, inp))],
        call=f"tp_lut_s8(${{p}}table, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


def rsqrt_table(op: Operator, inp: Tensor, output: Tensor) -> np.ndarray:
    """RsqrtEvalQuantized for every input byte. An input at the zero point gives 127 as in
    TFLM; one below it (a negative real) makes TFLM fail the whole invoke, which a table
    cannot do: it gives 127 too."""
    # SetRsqrtOutputMultiplier: the square root and the product in float, the reciprocal in double.
    scale = np.sqrt(np.float32(inp.scale)) * np.float32(output.scale)
    multiplier, shift = quant_math.quantize_multiplier(1.0 / float(scale))
    if shift - RSQRT_HEADROOM_SHIFT < -31:
        raise RSQRT_RESCALE.refusal(op, f"has input scale {inp.scale:g} and output scale {output.scale:g}, "
                                        "whose rescale falls below 2^-31 after the headroom")
    table = np.full(256, quant_math.INT8_MAX, dtype=np.int64)
    for q in range(inp.zero_point + 1, 128):
        inv_sqrt, inv_shift = gl.get_inv_sqrt_quantized_multiplier_exp(q - inp.zero_point, -1)
        raw = gl.multiply_by_quantized_multiplier(1, inv_sqrt, inv_shift + RSQRT_HEADROOM_SHIFT)
        value = gl.multiply_by_quantized_multiplier(raw, multiplier, shift - RSQRT_HEADROOM_SHIFT)
        table[q & 0xFF] = min(max(value + output.zero_point, quant_math.INT8_MIN), quant_math.INT8_MAX)
    return table.astype(np.int8)


@lowers("RSQRT")
def lower_rsqrt(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    return Step(
        op=op,
        header="tp_lut.h",
        sources=("tp_lut_s8.c",),
        arrays=[CArray("table", "int8_t", rsqrt_table(op, inp, output))],
        call=f"tp_lut_s8(${{p}}table, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )
