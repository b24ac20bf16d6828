"""UNIDIRECTIONAL_SEQUENCE_LSTM in TFLite's integer form (a Keras LSTM layer converted to int8):
int8 input, hidden state and output, int8 weights, int32 biases, int16 cell state, as TFLite
Micro's lstm_eval runs it (8x8->16).

Every rescale is known ahead of time, as TFLM's Prepare computes it: the gate fully-connected
products go to Q3.12 (scale 2^-12), sigmoid and tanh give Q0.15 (2^-15), and the element-wise
products rescale those to the cell state's and the hidden state's scales. The cell state's scale
must be a power of two (its tanh input shift is derived from the exponent).

The hidden and cell state are TFLite variable tensors: the kernel resets them at the start of
each invocation (TFLM's reset values), so every invocation is one independent sequence, and
their arena space lives only during the step.

The DSP kernel set (kernels="dsp") runs the same kernel with the gates' matrix-vector products
on SMLAD pairs: the weights packed as tp_fully_connected_s8_dsp's filter, the input and hidden
offsets folded into per-unit biases at generation time (tp_dsp_lstm.h).

Refused, naming the reason: the LSTM variants TFLM's kernel does not evaluate (peephole,
projection, layer normalization, coupled input and forget gates) and those the native runtime
does not (float, hybrid, int16x8 activations, per-channel or asymmetric weights).
"""

from __future__ import annotations

import math

import numpy as np

from ...core.errors import shorten
from .. import quant_math
from ..ir import Graph, Operator, Tensor
from . import CArray, CStruct, MalformedOperator, Step, constraint, lowers
from .common import (INT8_TENSORS, INT16_ON_INT16X8_OPERATORS, PER_TENSOR, SYMMETRIC_WEIGHTS, effective_bias,
                     require_private_state, rescale_multiplier)
from .fully_connected import pack_fully_connected_filter

# Operand positions (TFLite's lstm_shared.h). Gates in the order input, forget, cell, output.
INPUT = 0
INPUT_WEIGHTS = (1, 2, 3, 4)
RECURRENT_WEIGHTS = (5, 6, 7, 8)
PEEPHOLE = (9, 10, 11)
BIASES = (12, 13, 14, 15)
PROJECTION = (16, 17)
HIDDEN_STATE, CELL_STATE = 18, 19
LAYER_NORM = (20, 21, 22, 23)
OPERANDS = 24

GATE_INPUT_SCALE = 2.0 ** -12  # Q3.12: what the gates' fully-connected sums are rescaled to
GATE_OUTPUT_SCALE = 2.0 ** -15  # Q0.15: what sigmoid and tanh give
TANH = 4  # ActivationFunctionType TANH: the cell gate's activation (TFLM evaluates no other)
CELL_POWER_RANGE = (-30, 2)  # cell scale exponents whose tanh input rescale fits TFLM's int32 arithmetic

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
STANDARD_LSTM = constraint(LSTM, doc="the standard LSTM, as a Keras LSTM layer converts: no peephole connections, "
                                     "projection layer or layer normalization (TFLite Micro's LSTM kernel evaluates "
                                     "none of them)")
ALL_FOUR_GATES = constraint(LSTM, doc="all four gates: no coupled input and forget gates (CIFG), which TFLite Micro's "
                                      "LSTM kernel does not evaluate")
INTEGER_LSTM = constraint(LSTM, doc="the full-integer int8 LSTM, as TFLite Micro runs it (8x8->16): int8 input, hidden "
                                    "state and output, constant int8 weights, constant int32 biases and an int16 cell "
                                    "state")
CELL_STATE_QUANTIZATION = constraint(
    LSTM, doc=f"a symmetric cell state (zero point 0) whose scale is a power of two from 2^{CELL_POWER_RANGE[0]} to "
              f"2^{CELL_POWER_RANGE[1]}: TFLite's integer tanh of the cell state needs one")
TANH_CELL = constraint(LSTM, doc="cell activation TANH, the only one TFLite Micro's LSTM kernel evaluates")
FULL_RECURRENT_WEIGHTS = constraint(LSTM, doc="full recurrent weight matrices (TFLite Micro's LSTM kernel takes no "
                                              "diagonal ones)")


def scratch_bytes(units: int) -> int:
    """TP_LSTM_SCRATCH_BYTES: three int16 gate vectors of `units`."""
    return 3 * units * 2


def cell_scale_power(scale: float) -> int | None:
    """The exponent p of a cell state scale 2^p (TFLM's CheckedLog2), or None when it is not one."""
    exact = math.log2(float(np.float32(scale)))
    power = round(exact)
    return power if abs(exact - power) < 1e-3 else None


def cell_tanh_rescale(power: int) -> tuple[int, int]:
    """(multiplier, right shift) of tanh's input for a cell state of scale 2^power (TFLM's
    lstm_internal::Tanh, then the int16 TANH's power-of-two case): the input shift 12 + power,
    as a multiplier of 3 << shift, or 3 with a rounding right shift when it is negative."""
    left = 15 + power - 3
    return (3 << left, 0) if left >= 0 else (3, -left)


def quantized_cell_clip(cell_clip: float, cell_scale: float) -> int:
    """TFLM's quantized_cell_clip in double, truncated into int16; -1 (no clipping) unless cell_clip > 0."""
    if not cell_clip > 0:
        return -1
    ratio = float(np.float32(cell_clip)) / float(np.float32(cell_scale))
    return int(min(max(ratio, -32768.0), 32767.0))


def _mul_rescale(op: Operator, what: str, scale1: float, scale2: float, out_scale: float) -> tuple[int, int]:
    """CreateInterGateMulParams: the product of two scales over the output's, in double."""
    real = float(np.float32(scale1)) * float(np.float32(scale2)) / float(np.float32(out_scale))
    return rescale_multiplier(op, what, real)


@lowers("UNIDIRECTIONAL_SEQUENCE_LSTM")
def lower_unidirectional_sequence_lstm(graph: Graph, op: Operator) -> Step:
    where = f"UNIDIRECTIONAL_SEQUENCE_LSTM (node {op.index})"

    def malformed(reason: str) -> None:
        raise MalformedOperator(f"{where}: {reason}; the model is inconsistent")

    if len(op.inputs) != OPERANDS or len(op.outputs) != 1:
        malformed(f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; TFLite Micro's kernel takes "
                  f"{OPERANDS} inputs (absent ones as -1) and 1 output")
    operands = graph.input_tensors(op)
    present = [i for i, t in enumerate(operands) if t is not None]

    def variant(positions, name: str) -> None:
        if any(operands[i] is not None for i in positions):
            raise STANDARD_LSTM.refusal(op, f"is an LSTM with {name}")

    variant(PEEPHOLE, "peephole connections")
    variant(PROJECTION, "a projection layer")
    variant(LAYER_NORM, "layer normalization")
    if any(operands[i] is None for i in (INPUT_WEIGHTS[0], RECURRENT_WEIGHTS[0], BIASES[0])):
        raise ALL_FOUR_GATES.refusal(op, "has no input gate (coupled input and forget gates, CIFG)")
    missing = [i for i in (INPUT, *INPUT_WEIGHTS, *RECURRENT_WEIGHTS, *BIASES, HIDDEN_STATE, CELL_STATE)
               if i not in present]
    if missing:
        malformed(f"lacks operands {missing}")

    inp, hidden, cell = operands[INPUT], operands[HIDDEN_STATE], operands[CELL_STATE]
    output = graph.tensors[op.outputs[0]]
    weights = [operands[i] for i in INPUT_WEIGHTS + RECURRENT_WEIGHTS]
    biases = [operands[i] for i in BIASES]

    # Types: the int8 form only (TFLM's 8x8->16).
    if inp.dtype == "float32":
        if weights[0].dtype in ("int8", "uint8"):
            raise INT8_TENSORS.refusal(op, "is a hybrid LSTM (float activations, int8 weights)")
        raise INT8_TENSORS.refusal(op, "is a float LSTM")
    if inp.dtype == "int16":
        raise INT16_ON_INT16X8_OPERATORS.refusal(op, f"has int16 activations (input {shorten(inp.name)!r})")
    for role, tensor in (("input", inp), ("hidden state", hidden), ("output", output)):
        if tensor.dtype != "int8" or tensor.quantization is None:
            raise INTEGER_LSTM.refusal(op, f"has {'' if tensor.quantization else 'unquantized '}{tensor.dtype} "
                                           f"{role} {shorten(tensor.name)!r}")
    for role, tensor in (("input", inp), ("hidden state", hidden), ("cell state", cell)):
        if tensor.quantization is not None and tensor.quantization.per_channel:
            raise PER_TENSOR.refusal(op, f"has {role} {shorten(tensor.name)!r} with "
                                         f"{tensor.quantization.scale.size} scales")
    for tensor in weights:
        if tensor.dtype != "int8" or tensor.quantization is None or not tensor.is_constant:
            raise INTEGER_LSTM.refusal(op, f"has {'constant' if tensor.is_constant else 'non-constant'}"
                                           f"{'' if tensor.quantization else ' unquantized'} {tensor.dtype} weights "
                                           f"{shorten(tensor.name)!r}")
        if tensor.quantization.per_channel:
            raise PER_TENSOR.refusal(op, f"has weights {shorten(tensor.name)!r} quantized per channel")
        if tensor.zero_point != 0:
            raise SYMMETRIC_WEIGHTS.refusal(op, f"has weights {shorten(tensor.name)!r} with zero point "
                                                f"{tensor.zero_point}")
    for tensor in biases:
        if tensor.dtype != "int32" or not tensor.is_constant:
            raise INTEGER_LSTM.refusal(op, f"has a {'constant' if tensor.is_constant else 'non-constant'} "
                                           f"{tensor.dtype} bias {shorten(tensor.name)!r}")
    if cell.dtype != "int16" or cell.quantization is None:
        raise INTEGER_LSTM.refusal(op, f"has {'an ' if cell.quantization else 'an unquantized '}{cell.dtype} cell "
                                       f"state {shorten(cell.name)!r}")
    if cell.zero_point != 0:
        raise CELL_STATE_QUANTIZATION.refusal(op, f"has cell state {shorten(cell.name)!r} with zero point "
                                                  f"{cell.zero_point}")
    power = cell_scale_power(cell.scale)
    if power is None or not CELL_POWER_RANGE[0] <= power <= CELL_POWER_RANGE[1]:
        raise CELL_STATE_QUANTIZATION.refusal(op, f"has cell state {shorten(cell.name)!r} of scale {cell.scale:g}")
    if op.options.get("fused_activation_function", 0) != TANH:
        act = op.options.get("fused_activation_function", 0)
        raise TANH_CELL.refusal(op, f"has cell activation {quant_math.FUSED_ACTIVATIONS.get(act, act)}")
    if op.options.get("diagonal_recurrent_tensors", False):
        raise FULL_RECURRENT_WEIGHTS.refusal(op, "has diagonal recurrent weights")

    for role, tensor in (("hidden", hidden), ("cell", cell)):
        require_private_state(graph, op, f"{role} state", tensor)
    if hidden.index == cell.index:
        malformed("the hidden and cell state are one tensor")

    # Shapes, as TFLM's CreateLstmSizeInfo and ValidateTensorSize read them.
    time_major = bool(op.options.get("time_major", False))
    if len(inp.shape) != 3:
        malformed(f"input shape {list(inp.shape)} is not 3-D ({'time, batch' if time_major else 'batch, time'}, "
                  "features)")
    if len(hidden.shape) != 2:
        malformed(f"hidden state shape {list(hidden.shape)} is not [batch, units]")
    time_steps, batches = inp.shape[:2] if time_major else inp.shape[1::-1]
    input_size, units = inp.shape[2], hidden.shape[1]

    def expect(tensor: Tensor, shape: tuple[int, ...], what: str) -> None:
        if tuple(tensor.shape) != shape:
            malformed(f"{what} {shorten(tensor.name)!r} has shape {list(tensor.shape)}; {list(shape)} expected "
                      f"for {units} units over {input_size} input features")

    for tensor in weights[:4]:
        expect(tensor, (units, input_size), "input weights")
    for tensor in weights[4:]:
        expect(tensor, (units, units), "recurrent weights")
    for tensor in biases:
        expect(tensor, (units,), "bias")
    for role, tensor in (("hidden", hidden), ("cell", cell)):
        if tensor.num_elements != batches * units:
            malformed(f"{role} state has {tensor.num_elements} elements; {batches} batches of {units} units expected")
    if tuple(output.shape) != (inp.shape[0], inp.shape[1], units):
        malformed(f"output shape {list(output.shape)}; {[inp.shape[0], inp.shape[1], units]} expected")
    if min(batches, time_steps, input_size, units) < 1:
        malformed(f"input {list(inp.shape)} and {units} units leave nothing to compute")

    # Rescales, as TFLM's PrepareGateParametersInteger computes them.
    input_fc = [rescale_multiplier(op, "input gate", float(np.float32(inp.scale)) * float(np.float32(w.scale))
                                   / GATE_INPUT_SCALE) for w in weights[:4]]
    recurrent_fc = [rescale_multiplier(op, "recurrent gate", float(np.float32(hidden.scale))
                                       * float(np.float32(w.scale)) / GATE_INPUT_SCALE) for w in weights[4:]]
    forget_mul = _mul_rescale(op, "forget gate product", GATE_OUTPUT_SCALE, cell.scale, cell.scale)
    input_mul = _mul_rescale(op, "input gate product", GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, cell.scale)
    output_mul = _mul_rescale(op, "hidden state product", GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, hidden.scale)
    tanh_multiplier, tanh_shift = cell_tanh_rescale(power)
    clip = quantized_cell_clip(float(op.options.get("cell_clip", 0.0)), cell.scale)

    def pairs(rescales) -> str:
        return "{" + ", ".join(f"{{{m}, {s}}}" for m, s in rescales) + "}"

    def pointers(tensors) -> str:
        return "{" + ", ".join(f"$t{t.index}" for t in tensors) + "}"

    params = (f"{{{-inp.zero_point}, {-hidden.zero_point}, {hidden.zero_point}, {pairs(input_fc)}, "
              f"{pairs(recurrent_fc)}, {{{forget_mul[0]}, {forget_mul[1]}}}, {{{input_mul[0]}, {input_mul[1]}}}, "
              f"{{{output_mul[0]}, {output_mul[1]}}}, {clip}, {tanh_multiplier}, {tanh_shift}}}")
    return Step(
        op=op,
        header="tp_lstm.h",
        sources=("tp_unidirectional_sequence_lstm_s8.c",),
        structs=[
            CStruct("tp_lstm_params", "params", params),
            CStruct("tp_lstm_weights", "weights",
                    f"{{{pointers(weights[:4])}, {pointers(weights[4:])}, {pointers(biases)}}}"),
            CStruct("tp_lstm_dims", "dims", f"{{{batches}, {time_steps}, {input_size}, {units}, {int(time_major)}}}"),
        ],
        call=(f"tp_unidirectional_sequence_lstm_s8(&${{p}}params, &${{p}}weights, &${{p}}dims, $t{inp.index}, "
              f"$t{hidden.index}, $t{cell.index}, $t{output.index}, (int16_t *)$scratch);"),
        scratch_bytes=scratch_bytes(units),
    )


@lowers("UNIDIRECTIONAL_SEQUENCE_LSTM", kernels="dsp")
def lower_unidirectional_sequence_lstm_dsp(graph: Graph, op: Operator) -> Step:
    """tp_unidirectional_sequence_lstm_s8_dsp: the reference step's checks, parameters and scratch,
    with each gate's weights packed as tp_fully_connected_s8_dsp's filter and the input and
    hidden offsets folded into per-unit biases (tp_dsp_lstm.h)."""
    base = lower_unidirectional_sequence_lstm(graph, op)
    operands = graph.input_tensors(op)
    inp, hidden, output = operands[INPUT], operands[HIDDEN_STATE], graph.tensors[op.outputs[0]]
    arrays, names = [], {"input_weights": [], "recurrent_weights": [], "input_bias": [], "recurrent_bias": []}
    for gate in range(4):
        w, r = operands[INPUT_WEIGHTS[gate]].data, operands[RECURRENT_WEIGHTS[gate]].data
        bias = operands[BIASES[gate]].data
        for kind, values in (("input_weights", pack_fully_connected_filter(w)),
                             ("recurrent_weights", pack_fully_connected_filter(r)),
                             ("input_bias", effective_bias(w, bias, -inp.zero_point)),
                             ("recurrent_bias", effective_bias(r, None, -hidden.zero_point))):
            arrays.append(CArray(f"{kind}{gate}", "int32_t", values))
            names[kind].append(f"${{p}}{kind}{gate}")
    weights = CStruct("tp_lstm_dsp_weights", "dsp_weights",
                      "{" + ", ".join("{" + ", ".join(names[kind]) + "}" for kind in names) + "}")
    params, dims = base.structs[0], base.structs[2]
    cell = operands[CELL_STATE]
    return Step(
        op=op, header="tp_dsp_lstm.h", kernel_dir="dsp",
        sources=("tp_unidirectional_sequence_lstm_s8_dsp.c", "tp_fully_connected_s8_dsp.c",
                 "../reference/tp_unidirectional_sequence_lstm_s8.c"),
        arrays=arrays, structs=[params, weights, dims],
        call=(f"tp_unidirectional_sequence_lstm_s8_dsp(&${{p}}params, &${{p}}dsp_weights, &${{p}}dims, "
              f"$t{inp.index}, $t{hidden.index}, $t{cell.index}, $t{output.index}, (int16_t *)$scratch);"),
        scratch_bytes=base.scratch_bytes,
    )
