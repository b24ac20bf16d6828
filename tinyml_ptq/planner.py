"""Static memory planning: every activation tensor gets an offset in one arena.

Buffers (activation tensors, with aliases merged, and per-step scratch) live
from the step that writes them to the last step that reads them. Buffers whose
lifetimes overlap must not overlap in memory; placement is greedy by size, as
TFLite Micro's greedy planner does, which is optimal or close on the chain-like
graphs of MCU models.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph
from .lowering import Step

ALIGNMENT = 16


@dataclass
class Buffer:
    key: str  # "tN" for a tensor group (N = the group's root tensor), "sN" for step N's scratch
    size: int
    first: int  # first step index at which the buffer is live
    last: int  # last step index at which the buffer is live
    offset: int = -1


@dataclass
class MemoryPlan:
    arena_bytes: int
    tensor_offsets: dict[int, int]  # tensor index -> arena offset
    scratch_offsets: dict[int, int]  # step index -> arena offset
    buffers: list[Buffer]

    def live_lower_bound(self) -> int:
        """Largest total size of buffers live at one step: no plan can do better."""
        if not self.buffers:
            return 0
        last_step = max(b.last for b in self.buffers)
        return max(
            sum(_aligned(b.size) for b in self.buffers if b.first <= step <= b.last)
            for step in range(last_step + 1)
        )


def _aligned(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(graph: Graph, steps: list[Step]) -> MemoryPlan:
    root = {}  # tensor -> tensor whose buffer it shares

    def find(t: int) -> int:
        while t in root:
            t = root[t]
        return t

    for step in steps:
        if step.alias_of is not None:
            root[step.op.outputs[0]] = find(step.alias_of)

    end = len(steps)
    lifetimes: dict[int, list[int]] = {}

    def touch(tensor_index: int, step_index: int) -> None:
        tensor = graph.tensor(tensor_index)
        if tensor is None or tensor.is_constant:
            return
        r = find(tensor_index)
        span = lifetimes.setdefault(r, [step_index, step_index])
        span[0] = min(span[0], step_index)
        span[1] = max(span[1], step_index)

    for t in graph.inputs:
        touch(t, 0)
    for i, step in enumerate(steps):
        for t in step.op.inputs + step.op.outputs:
            touch(t, i)
    for t in graph.outputs:
        touch(t, max(end - 1, 0))

    sizes: dict[int, int] = {}
    for t in lifetimes:
        members = [m for m in range(len(graph.tensors)) if find(m) == t and graph.tensors[m].data is None]
        sizes[t] = max(graph.tensors[m].nbytes for m in members)

    buffers = [Buffer(f"t{t}", sizes[t], span[0], span[1]) for t, span in lifetimes.items()]
    buffers += [Buffer(f"s{i}", s.scratch_bytes, i, i) for i, s in enumerate(steps) if s.scratch_bytes > 0]

    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.key)):
        conflicts = sorted(
            (p for p in placed if p.first <= buf.last and buf.first <= p.last), key=lambda p: p.offset
        )
        offset = 0
        for other in conflicts:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _aligned(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)

    arena = _aligned(max((b.offset + b.size for b in buffers), default=0))
    tensor_offsets = {}
    for m, tensor in enumerate(graph.tensors):
        r = find(m)
        if tensor.data is None and r in lifetimes:
            tensor_offsets[m] = next(b.offset for b in buffers if b.key == f"t{r}")
    scratch_offsets = {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")}
    return MemoryPlan(arena, tensor_offsets, scratch_offsets, buffers)
