"""ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU (with broadcast), RELU, RELU6,
LEAKY_RELU and HARD_SWISH, int8 (ADD, SUB, MUL and LEAKY_RELU also int16x8: 16-bit activations,
the int8 arithmetic on int16 codes with zero points 0).

Each lowering mirrors TFLite Micro's Prepare for the operator, including which
intermediate products it forms in float and which in double.
"""

from __future__ import annotations

import numpy as np

from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, MalformedOperator, Step, constraint, gemmlowp_math as gl, lowers
from .common import (dims_initializer, elementwise_inplace, fused_activation, is_int16x8, require_int8, require_int16x8,
                     require_per_tensor, rescale_multiplier)

BINARY_OPERATORS = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU")
BINARY_BROADCAST_RANK = constraint(*BINARY_OPERATORS, doc="operands and output of rank at most 4 (broadcast as NHWC)")
RESCALE_BELOW_ONE = constraint("ADD", "SUB", "SQUARED_DIFFERENCE",
                               doc="input rescale factors (and for ADD and SUB the output's) within (0, 1), as "
                                   "TFLite Micro's QuantizeMultiplierSmallerThanOneExp requires (it aborts otherwise)")
HARD_SWISH_OUTPUT_SCALE = constraint("HARD_SWISH", doc="an output scale of at least input scale / 128 (TFLite "
                                                       "Micro refuses a smaller one)")

f32 = np.float32
ADD_LEFT_SHIFT = 20  # headroom TFLite gives int8 ADD/SUB before rescaling
ADD_LEFT_SHIFT_S16 = 15  # and int16 ADD


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (4 - len(shape)) + tuple(shape)


def broadcast_initializer(op: Operator, input1: Tensor, input2: Tensor, output: Tensor) -> str:
    """tp_broadcast: output dims and per-input strides, 0 along broadcast dimensions."""
    rank = max(len(input1.shape), len(input2.shape), len(output.shape))
    if rank > 4:
        raise BINARY_BROADCAST_RANK.refusal(op, f"has rank-{rank} operands")
    out_dims = _nhwc(output.shape)

    def strides(tensor: Tensor) -> tuple[int, ...]:
        dims = _nhwc(tensor.shape)
        result = []
        for axis in range(4):
            if dims[axis] not in (1, out_dims[axis]):
                raise MalformedOperator(f"node {op.index}: {op.opcode} cannot broadcast {tensor.shape} to {output.shape}")
            contiguous = int(np.prod(dims[axis + 1:], dtype=np.int64))
            result.append(0 if dims[axis] == 1 else contiguous)
        return tuple(result)

    return "{%s, %s, %s}" % (dims_initializer(output.shape), dims_initializer(strides(input1)),
                             dims_initializer(strides(input2)))


def _multiplier_below_one(op: Operator, what: str, real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp, which TFLite Micro aborts on for real >= 1."""
    if not 0.0 < real < 1.0:
        raise RESCALE_BELOW_ONE.refusal(op, f"has {what} rescale factor {real:g}")
    return quant_math.quantize_multiplier(real)


def binary_operands(graph: Graph, op: Operator, int16x8: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The two operands and the output, int8 (or, where the operator has a 16x8 kernel and
    `int16x8` says so, int16x8 throughout), per-tensor quantized."""
    input1, input2 = graph.input_tensors(op)[:2]
    output = graph.tensors[op.outputs[0]]
    if int16x8 and is_int16x8(input1):
        require_int16x8(graph, op, (input1, input2, output))
    else:
        require_int8(graph, op, input1, input2, output)
    require_per_tensor(op, input1, input2, output)
    return input1, input2, output


def add_sub_rescaling(op: Operator, input1: Tensor, input2: Tensor, output: Tensor,
                       left_shift: int = ADD_LEFT_SHIFT) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(multiplier, shift) of input 1, input 2 and the output, as TFLite Micro's Prepare forms them."""
    s1, s2, s_out = f32(input1.scale), f32(input2.scale), f32(output.scale)
    # CalculateOpDataAdd and, in the tflite_micro package (the oracle; its source tree forms SUB's
    # ratios in float, which int16 inputs show to differ in the last bit), CalculateOpDataSub work
    # in double throughout.
    twice_max = 2.0 * float(max(s1, s2))
    real1, real2 = float(s1) / twice_max, float(s2) / twice_max
    real_out = twice_max / ((1 << left_shift) * float(s_out))
    return (_multiplier_below_one(op, "input 1", real1), _multiplier_below_one(op, "input 2", real2),
            _multiplier_below_one(op, "output", real_out))


@lowers("ADD", "SUB")
def lower_add_sub(graph: Graph, op: Operator) -> Step:
    """int8, or int16x8 (TFLM's general-scale int16 path: the same arithmetic, left shift 15)."""
    input1, input2, output = binary_operands(graph, op, int16x8=True)
    width = "s16" if is_int16x8(input1) else "s8"
    left_shift = ADD_LEFT_SHIFT_S16 if width == "s16" else ADD_LEFT_SHIFT
    (m1, e1), (m2, e2), (m_out, e_out) = add_sub_rescaling(op, input1, input2, output, left_shift)
    act_min, act_max = fused_activation(op, output)
    params = CStruct("tp_add_params", "params",
                     f"{{{-input1.zero_point}, {-input2.zero_point}, {output.zero_point}, {left_shift}, "
                     f"{{{m1}, {e1}}}, {{{m2}, {e2}}}, {{{m_out}, {e_out}}}, {{{act_min}, {act_max}}}}}")
    kernel = f"tp_{op.opcode.lower()}_{width}"
    return _broadcast_step(op, kernel, f"tp_add_sub_{width}.c", params, input1, input2, output)


def _broadcast_step(op: Operator, kernel: str, source: str, params: CStruct | None,
                    input1: Tensor, input2: Tensor, output: Tensor) -> Step:
    """A binary reference kernel over two operands broadcast to the output (tp_elementwise.h),
    called as kernel([&params,] &shape, input1, input2, output)."""
    shape = CStruct("tp_broadcast", "shape", broadcast_initializer(op, input1, input2, output))
    return Step(
        op=op,
        header="tp_elementwise.h",
        sources=(source,),
        structs=[shape] if params is None else [params, shape],
        call=(f"{kernel}({'' if params is None else '&${p}params, '}&${{p}}shape, "
              f"$t{input1.index}, $t{input2.index}, $t{output.index});"),
        inplace=elementwise_inplace(output, input1, input2),
    )


@lowers("ADD", "SUB", kernels="dsp")
def lower_add_sub_dsp(graph: Graph, op: Operator) -> Step:
    """Same-shape ADD and SUB on tp_add_s8_dsp: each input's rescaling (offset, shift left by 20,
    rescale) depends on its int8 value alone, so the generator tabulates it (SUB negates input
    2's table); the kernel sums two table entries and requantizes the sum in the short form of
    tp_dsp.h, which the generator proves exact from the tables' extremes (else the reference)."""
    base = lower_add_sub(graph, op)
    if is_int16x8(graph.tensors[op.inputs[0]]):
        return base  # the reference 16x8 kernel: the DSP set has none
    input1, input2, output = binary_operands(graph, op)
    if not tuple(input1.shape) == tuple(input2.shape) == tuple(output.shape):
        return base  # broadcasting stays on the reference kernel
    (m1, e1), (m2, e2), (m_out, e_out) = add_sub_rescaling(op, input1, input2, output)
    values = range(-128, 128)
    scaled1 = [gl.multiply_by_quantized_multiplier((v - input1.zero_point) << ADD_LEFT_SHIFT, m1, e1) for v in values]
    scaled2 = [gl.multiply_by_quantized_multiplier((v - input2.zero_point) << ADD_LEFT_SHIFT, m2, e2) for v in values]
    if op.opcode == "SUB":
        scaled2 = [-v for v in scaled2]
    right = -e_out
    widest_sum = max(map(abs, scaled1)) + max(map(abs, scaled2))
    # Right shift 0 is no rounding divide at all: no rounding half and no -1 for negatives.
    rounding = (1 << right >> 1) + output.zero_point * (1 << right)
    sign_mask = -1 if right else 0
    # |SMMULR(sum << 1, m_out)| <= |sum| + 1: no overflow before the floor shift.
    if widest_sum >= 1 << 30 or widest_sum + 2 + abs(rounding) >= 1 << 31:
        return base
    return Step(
        op=op, header="tp_dsp.h", sources=("tp_add_s8_dsp.c",), kernel_dir="dsp", structs=base.structs[:1],
        arrays=[CArray("scaled", "int32_t", np.array(scaled1 + scaled2, dtype=np.int32)),
                CArray("output_words", "int32_t", np.array([rounding, right, sign_mask], dtype=np.int32))],
        call=(f"tp_add_s8_dsp(&${{p}}params, ${{p}}scaled, ${{p}}output_words, {output.num_elements}, "
              f"$t{input1.index}, $t{input2.index}, $t{output.index});"),
        inplace=base.inplace,
    )


@lowers("MUL")
def lower_mul(graph: Graph, op: Operator) -> Step:
    """int8, or int16x8 (the same arithmetic: zero points 0, int16 products still fit in int32)."""
    input1, input2, output = binary_operands(graph, op, int16x8=True)
    real = float(f32(input1.scale)) * float(f32(input2.scale)) / float(f32(output.scale))
    multiplier, shift = quant_math.quantize_multiplier(real)
    act_min, act_max = fused_activation(op, output)
    params = CStruct("tp_mul_params", "params",
                     f"{{{-input1.zero_point}, {-input2.zero_point}, {output.zero_point}, "
                     f"{{{multiplier}, {shift}}}, {{{act_min}, {act_max}}}}}")
    width = "s16" if is_int16x8(input1) else "s8"
    return _broadcast_step(op, f"tp_mul_{width}", f"tp_mul_{width}.c", params, input1, input2, output)


@lowers("MAXIMUM", "MINIMUM")
def lower_maximum_minimum(graph: Graph, op: Operator) -> Step:
    """TFLM's int8 MAXIMUM/MINIMUM compare raw codes and never rescale, whatever the three
    quantizations are (the converter gives them one); the kernel does the same."""
    input1, input2, output = binary_operands(graph, op)
    kernel = "tp_maximum_s8" if op.opcode == "MAXIMUM" else "tp_minimum_s8"
    return _broadcast_step(op, kernel, "tp_minmax_s8.c", None, input1, input2, output)


SQUARED_DIFFERENCE_LEFT_SHIFT = 7  # int8 headroom: (255 * 2^7)^2 still fits in int32


@lowers("SQUARED_DIFFERENCE")
def lower_squared_difference(graph: Graph, op: Operator) -> Step:
    input1, input2, output = binary_operands(graph, op)
    # PrepareQuantized: the larger scale picked in float, every ratio in double, and the
    # output's 2^(2 * left_shift) multiplied into its scale in float (a power of two: exact).
    twice_max = 2.0 * float(max(f32(input1.scale), f32(input2.scale)))
    real1, real2 = float(f32(input1.scale)) / twice_max, float(f32(input2.scale)) / twice_max
    real_out = twice_max * twice_max / float(f32(1 << 2 * SQUARED_DIFFERENCE_LEFT_SHIFT) * f32(output.scale))
    (m1, e1), (m2, e2) = _multiplier_below_one(op, "input 1", real1), _multiplier_below_one(op, "input 2", real2)
    m_out, e_out = rescale_multiplier(op, "output", real_out)
    params = CStruct("tp_squared_difference_params", "params",
                     f"{{{-input1.zero_point}, {-input2.zero_point}, {output.zero_point}, "
                     f"{SQUARED_DIFFERENCE_LEFT_SHIFT}, {{{m1}, {e1}}}, {{{m2}, {e2}}}, {{{m_out}, {e_out}}}}}")
    return _broadcast_step(op, "tp_squared_difference_s8", "tp_squared_difference_s8.c", params,
                           input1, input2, output)


@lowers("PRELU")
def lower_prelu(graph: Graph, op: Operator) -> Step:
    inp, alpha, output = binary_operands(graph, op)
    # CalculatePreluParams: both ratios in double.
    s_in, s_alpha, s_out = float(f32(inp.scale)), float(f32(alpha.scale)), float(f32(output.scale))
    m_pos, e_pos = rescale_multiplier(op, "input", s_in / s_out)
    m_neg, e_neg = rescale_multiplier(op, "input times alpha", s_in * s_alpha / s_out)
    params = CStruct("tp_prelu_params", "params",
                     f"{{{-inp.zero_point}, {-alpha.zero_point}, {output.zero_point}, "
                     f"{{{m_pos}, {e_pos}}}, {{{m_neg}, {e_neg}}}}}")
    return _broadcast_step(op, "tp_prelu_s8", "tp_prelu_s8.c", params, inp, alpha, output)


def _unary_operands(graph: Graph, op: Operator, int16x8: bool = False) -> tuple[Tensor, Tensor]:
    """Input and output, int8 (or int16x8 where the operator has a 16x8 kernel and `int16x8` says so)."""
    inp = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if int16x8 and is_int16x8(inp):
        require_int16x8(graph, op, (inp, output))
    else:
        require_int8(graph, op, inp, output)
    if inp.num_elements != output.num_elements:
        raise MalformedOperator(f"node {op.index}: {op.opcode} input {inp.shape} and output {output.shape} differ in size")
    return inp, output


@lowers("RELU")
def lower_relu(graph: Graph, op: Operator) -> Step:
    inp, output = _unary_operands(graph, op)
    multiplier, shift = quant_math.quantize_multiplier(float(f32(inp.scale)) / float(f32(output.scale)))
    # CalculateReluOpData: the lower clamp is the output's quantized 0.0.
    act_min = max(quant_math.INT8_MIN, output.zero_point)
    return Step(
        op=op,
        header="tp_elementwise.h",
        sources=("tp_relu_s8.c",),
        structs=[CStruct("tp_relu_params", "params",
                         f"{{{inp.zero_point}, {output.zero_point}, {{{multiplier}, {shift}}}, "
                         f"{{{act_min}, {quant_math.INT8_MAX}}}}}")],
        call=f"tp_relu_s8(&${{p}}params, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


@lowers("RELU6")
def lower_relu6(graph: Graph, op: Operator) -> Step:
    inp, output = _unary_operands(graph, op)
    # Relu6Prepare quantizes 6.0 with the INPUT's parameters (FloatToQuantizedType)
    # and the kernel never looks at the output's scale.
    six = quant_math.round_half_away(float(f32(6.0) / f32(inp.scale))) + inp.zero_point
    six = min(max(six, quant_math.INT8_MIN), quant_math.INT8_MAX)
    return Step(
        op=op,
        header="tp_elementwise.h",
        sources=("tp_relu6_s8.c",),
        call=f"tp_relu6_s8({inp.zero_point}, {six}, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


@lowers("LEAKY_RELU")
def lower_leaky_relu(graph: Graph, op: Operator) -> Step:
    """int8, or int16x8 (the same arithmetic, clamped to int16)."""
    inp, output = _unary_operands(graph, op, int16x8=True)
    width = "s16" if is_int16x8(inp) else "s8"
    alpha = float(f32(op.options.get("alpha", 0.2)))
    s_in, s_out = float(f32(inp.scale)), float(f32(output.scale))
    # CalculateOpDataLeakyRelu: both ratios in double in the tflite_micro package (the oracle; its
    # source tree forms them in float, which int16 inputs show to differ in the last bit).
    alpha_m, alpha_e = quant_math.quantize_multiplier(s_in * alpha / s_out)
    identity_m, identity_e = quant_math.quantize_multiplier(s_in / s_out)
    return Step(
        op=op,
        header="tp_elementwise.h",
        sources=(f"tp_leaky_relu_{width}.c",),
        structs=[CStruct("tp_leaky_relu_params", "params",
                         f"{{{inp.zero_point}, {output.zero_point}, {{{identity_m}, {identity_e}}}, "
                         f"{{{alpha_m}, {alpha_e}}}}}")],
        call=f"tp_leaky_relu_{width}(&${{p}}params, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )


def downscale_multiplier_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier: the Q31 multiplier rounded to Q15, saturating."""
    rounding = 1 << 15
    if multiplier >= (1 << 31) - 1 - rounding:
        return (1 << 15) - 1
    return (multiplier + rounding) >> 16


@lowers("HARD_SWISH")
def lower_hard_swish(graph: Graph, op: Operator) -> Step:
    inp, output = _unary_operands(graph, op)
    # HardSwishPrepare: every scale ratio is a float computation.
    hires_input_scale = f32(1.0 / 128.0) * f32(inp.scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    out_m, out_e = quant_math.quantize_multiplier(float(hires_input_scale / f32(output.scale)))
    reluish_m, reluish_e = quant_math.quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_e > 0:
        raise HARD_SWISH_OUTPUT_SCALE.refusal(op, f"has output scale {output.scale:g}, below input scale / 128 "
                                                  f"({float(hires_input_scale):g})")
    return Step(
        op=op,
        header="tp_elementwise.h",
        sources=("tp_hard_swish_s8.c",),
        structs=[CStruct("tp_hard_swish_params", "params",
                         f"{{{inp.zero_point}, {output.zero_point}, {downscale_multiplier_to_int16(out_m)}, "
                         f"{out_e}, {downscale_multiplier_to_int16(reluish_m)}, {reluish_e}}}")],
        call=f"tp_hard_swish_s8(&${{p}}params, {inp.num_elements}, $t{inp.index}, $t{output.index});",
        inplace=elementwise_inplace(output, inp),
    )
