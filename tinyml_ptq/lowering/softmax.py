"""SOFTMAX, int8 -> int8, as TFLite's gemmlowp fixed-point reference."""

from __future__ import annotations

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator
from . import CArray, Step, UnsupportedOperator, lowers
from . import gemmlowp_math as gl
from .common import require_int8

SCALED_DIFF_INTEGER_BITS = 5  # the exp() input is Q5.26
MAX_DEPTH = 4095  # each element adds up to 2^19 to the Q12.19 int32 sum of exponentials


def softmax_exp_table(beta: float, input_scale: float) -> np.ndarray:
    """exp((x - row_max) * beta * input_scale) in Q0.31 for each distance k = row_max - x in 0..255.

    PreprocessSoftmaxScaling (double, capped at 2^31 - 1), diff_min from
    CalculateInputRadius, then MultiplyByQuantizedMultiplierGreaterThanOne and
    exp_on_negative_values exactly as the reference runs them per element.
    Entries TFLite skips (difference below diff_min) are 0, which yields the same
    sum and the same -128 output as skipping.
    """
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)
    if real <= 1.0:
        raise UnsupportedOperator(f"SOFTMAX input scale {input_scale:g} times beta {beta:g} is too small for "
                                  "TFLite's fixed-point softmax")
    multiplier, left_shift = quant_math.quantize_multiplier(real)
    diff_min = -gl.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    table = np.zeros(256, dtype=np.int64)
    for k in range(256):
        if -k >= diff_min:
            scaled = gl.multiply_by_quantized_multiplier_greater_than_one(-k, multiplier, left_shift)
            table[k] = gl.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    return table.astype(np.int32)


@lowers("SOFTMAX")
def lower_softmax(graph: Graph, op: Operator) -> Step:
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, inp, output)
    if output.zero_point != -128 or np.float32(output.scale) != np.float32(1.0 / 256):
        raise UnsupportedOperator(f"SOFTMAX (node {op.index}) output has scale {output.scale:g}, zero point "
                                  f"{output.zero_point}; TFLite int8 softmax requires 1/256 and -128")
    if not inp.shape:
        raise UnsupportedOperator(f"SOFTMAX (node {op.index}) has a scalar input")
    depth = inp.shape[-1]
    if depth > MAX_DEPTH:
        raise UnsupportedOperator(f"SOFTMAX (node {op.index}) over {depth} classes; at most {MAX_DEPTH} are supported "
                                  "(the int32 sum of exponentials could overflow)")
    table = softmax_exp_table(op.options.get("beta", 1.0), inp.scale)
    return Step(
        op=op,
        header="tp_softmax.h",
        sources=("tp_softmax_s8.c",),
        arrays=[CArray("exp", "int32_t", table)],
        call=f"tp_softmax_s8(${{p}}exp, {inp.num_elements // depth}, {depth}, $t{inp.index}, $t{output.index});",
    )
