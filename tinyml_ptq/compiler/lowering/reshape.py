"""RESHAPE, SQUEEZE, EXPAND_DIMS: the output is the input's buffer, reinterpreted."""

from __future__ import annotations

from ..ir import Graph, Operator
from . import Step, lowers
from .common import is_int16x8, require_int8, require_int16x8


@lowers("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def lower_reshape(graph: Graph, op: Operator) -> Step:
    source = graph.tensors[op.inputs[0]]
    output = graph.tensors[op.outputs[0]]
    if is_int16x8(source):
        require_int16x8(graph, op, (source, output))
    else:
        require_int8(graph, op, source, output)
    # Same quantization in and out: the reader's validation refused a reshape that requantizes.
    return Step(op=op, alias_of=source.index)
