"""RESHAPE, SQUEEZE, EXPAND_DIMS: the output is the input's buffer, reinterpreted."""

from __future__ import annotations

from ..ir import Graph, Operator
from . import Step, lowers
from .common import require_int8


@lowers("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def lower_reshape(graph: Graph, op: Operator) -> Step:
    source = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    require_int8(graph, op, source, output)
    if source.quantization is not None and (source.scale, source.zero_point) != (output.scale, output.zero_point):
        # TFLite reshapes never requantize; a model that asks for it is malformed.
        raise ValueError(f"node {op.index}: {op.opcode} changes quantization")
    return Step(op=op, alias_of=source.index)
