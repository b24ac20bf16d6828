"""LOGISTIC, TANH and RSQRT, int8: a 256-entry table per operator.

TFLM evaluates LOGISTIC and TANH with gemmlowp fixed-point logistic / tanh on a
Q4.27 rescaled input, and RSQRT with a fixed-point Newton-Raphson inverse square
root. Every int8 input value goes through exactly that integer arithmetic here,
at generation time, so the device only looks results up.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CArray, Step, UnsupportedOperator, lowers
from . import gemmlowp_math as gl
from .common import elementwise_inplace, require_int8

INPUT_INTEGER_BITS = 4  # the rescaled input is Q4.27


def _input_rescale(op: Operator, inp: Tensor) -> tuple[int, int, int]:
    """(multiplier, left shift, input radius) as TFLM's Prepare computes them: frexp of
    input_scale * 2^27 rounded to 31 bits, without QuantizeMultiplier's 2^31 fix-up."""
    fraction, left_shift = math.frexp(float(np.float32(inp.scale)) * (1 << (31 - INPUT_INTEGER_BITS)))
    if left_shift < 0:
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) input scale {inp.scale:g} is too small")
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


@lowers("LOGISTIC", "TANH")
def lower_lut_activation(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    expected_zero_point = -128 if op.opcode == "LOGISTIC" else 0
    if output.zero_point != expected_zero_point:
        # The reference ignores the output quantization and writes this fixed encoding.
        raise UnsupportedOperator(f"{op.opcode} (node {op.index}) output zero point {output.zero_point}; "
                                  f"TFLite int8 {op.opcode} produces zero point {expected_zero_point}")
    return Step(
        op=op,
        header="tp_lut.h",
        sources=("tp_lut_s8.c",),
        arrays=[CArray("table", "int8_t", lut_table(op, inp))],
        call=f"tp_lut_s8(${{p}}table, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


RSQRT_HEADROOM_SHIFT = 20  # RsqrtEvalQuantized keeps 1/sqrt(x) in an integer with 2^20 headroom


def rsqrt_table(op: Operator, inp: Tensor, output: Tensor) -> np.ndarray:
    """RsqrtEvalQuantized for every input byte. An input at the zero point gives 127 as in
    TFLM; one below it (a negative real) makes TFLM fail the whole invoke, which a table
    cannot do: it gives 127 too."""
    # SetRsqrtOutputMultiplier: the square root and the product in float, the reciprocal in double.
    scale = np.sqrt(np.float32(inp.scale)) * np.float32(output.scale)
    multiplier, shift = quant_math.quantize_multiplier(1.0 / float(scale))
    if shift - RSQRT_HEADROOM_SHIFT < -31:
        raise UnsupportedOperator(f"RSQRT (node {op.index}): input scale {inp.scale:g} and output scale "
                                  f"{output.scale:g} give a rescale below 2^-31 after the reference's headroom")
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
