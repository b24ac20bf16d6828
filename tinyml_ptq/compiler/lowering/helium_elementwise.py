"""ADD, SUB, AVERAGE_POOL_2D and MAX_POOL_2D on the Helium (MVE) kernels (tp_helium_elementwise.h),
for int8; everything else as the DSP set (then the reference) lowers it."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from . import CArray, Step, gemmlowp_math as gl, lowers
from .common import is_int16x8
from .elementwise import ADD_LEFT_SHIFT, add_sub_rescaling, binary_operands, lower_add_sub_dsp
from .pooling import lower_pool

AVG_POOL_MAX_COUNT = 256  # TP_HELIUM_AVG_POOL_MAX_COUNT: int16 sums


@lowers("ADD", "SUB", kernels="helium")
def lower_add_sub_helium(graph: Graph, op: Operator) -> Step:
    """Same-shape int8 ADD and SUB on tp_add_s8_helium: each input's rescaling tabulated by the
    value's byte (SUB negates input 2's), the sum requantized exactly as the reference does."""
    base = lower_add_sub_dsp(graph, op)
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return base
    input1, input2, output = binary_operands(graph, op)
    if not tuple(input1.shape) == tuple(input2.shape) == tuple(output.shape):
        return base  # broadcasting stays on the reference kernel
    (m1, e1), (m2, e2), _ = add_sub_rescaling(op, input1, input2, output)
    values = np.arange(256).astype(np.uint8).view(np.int8)  # by byte: 0..127, then -128..-1
    scaled1 = [gl.multiply_by_quantized_multiplier((int(v) - input1.zero_point) << ADD_LEFT_SHIFT, m1, e1)
               for v in values]
    scaled2 = [gl.multiply_by_quantized_multiplier((int(v) - input2.zero_point) << ADD_LEFT_SHIFT, m2, e2)
               for v in values]
    if op.opcode == "SUB":
        scaled2 = [-v for v in scaled2]
    params = next(s for s in base.structs if s.name == "params")
    return Step(
        op=op, header="tp_helium_elementwise.h", sources=("tp_add_s8_helium.c",), kernel_dir="helium",
        structs=[params], arrays=[CArray("scaled", "int32_t", np.array(scaled1 + scaled2, dtype=np.int32))],
        call=(f"tp_add_s8_helium(&${{p}}params, ${{p}}scaled, {output.num_elements}, "
              f"$t{input1.index}, $t{input2.index}, $t{output.index});"),
        inplace=base.inplace,
    )


@lowers("AVERAGE_POOL_2D", "MAX_POOL_2D", kernels="helium")
def lower_pool_helium(graph: Graph, op: Operator) -> Step:
    base = lower_pool(graph, op)
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return base
    average = op.opcode == "AVERAGE_POOL_2D"
    if average and op.options.get("filter_height", 1) * op.options.get("filter_width", 1) > AVG_POOL_MAX_COUNT:
        return base
    kernel = "tp_avg_pool_s8_helium" if average else "tp_max_pool_s8_helium"
    return Step(op=op, header="tp_helium_elementwise.h", sources=(f"{kernel}.c",), kernel_dir="helium",
                structs=base.structs, call=base.call.replace(base.call.split("(")[0], kernel, 1))
