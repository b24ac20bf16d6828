"""SVDF in TFLite Micro's integer form: int8 input, feature weights and output, int32 bias, and
time weights with an activation state both int16 or both int8 (TFLM's EvalIntegerSvdfReference).

The two rescales are TFLM's Prepare's: input x feature weights / state scales and state x time
weights / output scales, each formed in float32 and then quantized in double. The fused activation
is not applied: TFLM's integer kernel leaves it out (the output is clamped to int8 only), so the
native runtime does the same to stay bit-exact.

The state is a TFLite variable tensor: the kernel resets it at the start of each invocation
(TFLM's reset values: 0 for int16, the zero point for int8), so every invocation is one
independent inference, and its arena space lives only during the step.

Refused, naming the reason: float and hybrid SVDF, int16 activations, mixed time weight and
state types, per-channel or asymmetric weights, a missing bias (TFLM's Prepare needs one) or
one whose scale is not the state's times the time weights'.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import shorten
from ..ir import Graph, Operator
from . import CStruct, MalformedOperator, Step, constraint, lowers
from .common import (INT8_TENSORS, INT16_ON_INT16X8_OPERATORS, PER_TENSOR, SYMMETRIC_WEIGHTS, require_private_state,
                     rescale_multiplier)

INPUT, WEIGHTS_FEATURE, WEIGHTS_TIME, BIAS, STATE = range(5)
BIAS_SCALE_TOLERANCE = 1e-5  # TFLM's Prepare: |bias scale - state scale x time weights scale| below this

INTEGER_SVDF = constraint("SVDF", doc="TFLite Micro's integer SVDF: int8 input and output, constant quantized weights "
                                      "(int8 feature weights), and time weights and state both int16 or both int8")
SVDF_BIAS = constraint("SVDF", doc="a constant int32 bias (TFLite Micro's integer SVDF needs one)")
SVDF_BIAS_SCALE = constraint("SVDF", doc="a bias scale that is the state's times the time weights' (as TFLite Micro's "
                                         "SVDF requires)")


def scratch_bytes(filters: int) -> int:
    """TP_SVDF_SCRATCH_BYTES: an int32 per filter and one per unit."""
    return 2 * filters * 4


@lowers("SVDF")
def lower_svdf(graph: Graph, op: Operator) -> Step:
    where = f"SVDF (node {op.index})"

    def malformed(reason: str) -> None:
        raise MalformedOperator(f"{where}: {reason}; the model is inconsistent")

    if len(op.inputs) != 5 or len(op.outputs) != 1:
        malformed(f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; TFLite Micro's kernel takes 5 inputs "
                  "(input, feature weights, time weights, bias, state) and 1 output")
    operands = graph.input_tensors(op)
    inp, feature, time, bias, state = operands
    output = graph.tensors[op.outputs[0]]
    if any(t is None for t in (inp, feature, time, state)):
        malformed("lacks its input, weights or state operand")
    if bias is None:
        raise SVDF_BIAS.refusal(op, "has no bias")

    if inp.dtype == "float32":
        if feature.dtype in ("int8", "uint8"):
            raise INT8_TENSORS.refusal(op, "is a hybrid SVDF (float activations, int8 weights)")
        raise INT8_TENSORS.refusal(op, "is a float SVDF")
    if inp.dtype == "int16":
        raise INT16_ON_INT16X8_OPERATORS.refusal(op, f"has int16 activations (input {shorten(inp.name)!r})")
    for role, tensor in (("input", inp), ("output", output)):
        if tensor.dtype != "int8" or tensor.quantization is None:
            raise INTEGER_SVDF.refusal(op, f"has {'' if tensor.quantization else 'unquantized '}{tensor.dtype} "
                                           f"{role} {shorten(tensor.name)!r}")
    for role, tensor in (("feature weights", feature), ("time weights", time)):
        if not tensor.is_constant or tensor.quantization is None:
            raise INTEGER_SVDF.refusal(op, f"has {'' if tensor.is_constant else 'non-constant '}"
                                           f"{'' if tensor.quantization else 'unquantized '}{tensor.dtype} {role} "
                                           f"{shorten(tensor.name)!r}")
        if tensor.quantization.per_channel:
            raise PER_TENSOR.refusal(op, f"has {role} {shorten(tensor.name)!r} quantized per channel")
    if feature.dtype != "int8":
        raise INTEGER_SVDF.refusal(op, f"has {feature.dtype} feature weights {shorten(feature.name)!r}")
    if time.dtype not in ("int8", "int16") or state.dtype != time.dtype:
        raise INTEGER_SVDF.refusal(op, f"has {time.dtype} time weights and a state of type {state.dtype}")
    if state.quantization is None or state.quantization.per_channel:
        raise PER_TENSOR.refusal(
            op, f"has {'an unquantized' if state.quantization is None else 'a per-channel quantized'} state "
                f"{shorten(state.name)!r}")
    if bias.dtype != "int32" or not bias.is_constant:
        raise SVDF_BIAS.refusal(op, f"has a {'constant' if bias.is_constant else 'non-constant'} {bias.dtype} bias "
                                    f"{shorten(bias.name)!r}")

    require_private_state(graph, op, "state", state)

    # Shapes, as TFLM's PrepareSvdf checks them.
    rank = int(op.options.get("rank", 0))
    if len(inp.shape) != 2 or len(feature.shape) != 2 or len(time.shape) != 2 or len(state.shape) != 2 \
            or len(output.shape) != 2:
        malformed(f"input {list(inp.shape)}, feature weights {list(feature.shape)}, time weights "
                  f"{list(time.shape)}, state {list(state.shape)} and output {list(output.shape)} are not all 2-D")
    batches, input_size = inp.shape
    filters, memory = feature.shape[0], time.shape[1]
    if rank < 1 or filters % rank:
        malformed(f"rank {rank} does not divide the {filters} filters")
    units = filters // rank
    if feature.shape[1] != input_size or time.shape[0] != filters:
        malformed(f"feature weights {list(feature.shape)} and time weights {list(time.shape)} do not match "
                  f"{input_size} input features and {filters} filters")
    if tuple(bias.shape) != (units,):
        malformed(f"bias shape {list(bias.shape)}; [{units}] expected")
    if tuple(state.shape) != (batches, memory * filters):
        malformed(f"state shape {list(state.shape)}; {[batches, memory * filters]} expected")
    if tuple(output.shape) != (batches, units):
        malformed(f"output shape {list(output.shape)}; {[batches, units]} expected")
    if min(batches, input_size, memory) < 1:
        malformed("its shapes leave nothing to compute")

    f32 = np.float32
    bias_scale = bias.scale if bias.quantization is not None else 0.0  # TFLM reads 0 for an unquantized bias
    if abs(bias_scale - float(f32(state.scale) * f32(time.scale))) >= BIAS_SCALE_TOLERANCE:
        raise SVDF_BIAS_SCALE.refusal(op, f"has bias scale {bias_scale:g}, where the state's times the time "
                                          f"weights' is {float(f32(state.scale) * f32(time.scale)):g}")
    for role, tensor in (("feature weights", feature), ("time weights", time)):
        if tensor.zero_point != 0:
            raise SYMMETRIC_WEIGHTS.refusal(op, f"has {role} {shorten(tensor.name)!r} with zero point "
                                                f"{tensor.zero_point}")
    feature_q = rescale_multiplier(op, "feature", float(f32(inp.scale) * f32(feature.scale) / f32(state.scale)))
    output_q = rescale_multiplier(op, "output", float(f32(state.scale) * f32(time.scale) / f32(output.scale)))
    state_reset = state.zero_point if state.dtype == "int8" else 0
    params = (f"{{{-inp.zero_point}, {state.zero_point}, {state_reset}, {output.zero_point}, "
              f"{{{feature_q[0]}, {feature_q[1]}}}, {{{output_q[0]}, {output_q[1]}}}}}")
    kernel = "tp_svdf_s8_s16" if state.dtype == "int16" else "tp_svdf_s8"
    return Step(
        op=op,
        header="tp_svdf.h",
        sources=("tp_svdf_s8.c",),
        structs=[
            CStruct("tp_svdf_params", "params", params),
            CStruct("tp_svdf_dims", "dims", f"{{{batches}, {input_size}, {filters}, {rank}, {memory}}}"),
        ],
        call=(f"{kernel}(&${{p}}params, &${{p}}dims, $t{inp.index}, $t{feature.index}, $t{time.index}, "
              f"$t{bias.index}, $t{state.index}, $t{output.index}, (int32_t *)$scratch);"),
        scratch_bytes=scratch_bytes(filters),
    )
