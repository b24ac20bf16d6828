"""Static memory planning: every activation tensor gets an offset in one arena.

Buffers (activation tensors, with aliases merged, and per-step scratch) live
from the step that writes them to the last step that reads them. Buffers whose
lifetimes overlap must not overlap in memory. Two placements are tried and the smaller kept: greedy by
size (TFLite Micro's planner) and a two-ended placement in execution order that
reaches the live-size lower bound on chain-like graphs where greedy does not.
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
        return live_lower_bound(self.buffers)


def live_lower_bound(buffers: list[Buffer]) -> int:
    """Largest total (aligned) size of buffers live at one step: no placement does better."""
    return max(
        (sum(_aligned(b.size) for b in buffers if b.first <= step <= b.last) for step in {b.first for b in buffers}),
        default=0,
    )


def _aligned(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _conflicts(buf: Buffer, placed: list[Buffer]) -> list[Buffer]:
    return sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last), key=lambda p: p.offset)


def _lowest_fit(buf: Buffer, conflicts: list[Buffer]) -> int:
    offset = 0
    for other in conflicts:
        if offset + buf.size <= other.offset:
            break
        offset = max(offset, _aligned(other.offset + other.size))
    return offset


def _highest_fit(buf: Buffer, conflicts: list[Buffer], limit: int) -> int | None:
    """Highest aligned offset with the buffer ending at or below `limit`, or None."""
    ceiling = limit
    for other in sorted(conflicts, key=lambda p: -p.offset):
        candidate = (ceiling - buf.size) // ALIGNMENT * ALIGNMENT
        if candidate >= other.offset + other.size:
            return candidate if candidate >= 0 else None
        ceiling = min(ceiling, other.offset)
    candidate = (ceiling - buf.size) // ALIGNMENT * ALIGNMENT
    return candidate if candidate >= 0 else None


def _greedy_by_size(buffers: list[Buffer]) -> None:
    """TFLite Micro's greedy planner: largest first, each at its lowest free offset."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.key)):
        buf.offset = _lowest_fit(buf, _conflicts(buf, placed))
        placed.append(buf)


def _two_ended(buffers: list[Buffer], limit: int) -> None:
    """In order of first use, put each buffer at the end of the arena away from the
    largest buffer it coexists with: a chain's input and output then sit at opposite
    ends, which reaches the live-size bound where lowest-offset placement does not."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (b.first, -b.size, b.key)):
        conflicts = _conflicts(buf, placed)
        low = _lowest_fit(buf, conflicts)
        high = _highest_fit(buf, conflicts, limit)
        if high is None or high < low:
            buf.offset = low
        elif not conflicts:
            buf.offset = low
        else:
            biggest = max(conflicts, key=lambda p: p.size)
            in_lower_half = biggest.offset + biggest.size / 2 < limit / 2
            buf.offset = high if in_lower_half else low
        placed.append(buf)


def _place_best(buffers: list[Buffer]) -> None:
    """Try each strategy and keep the smallest arena."""
    bound = live_lower_bound(buffers)
    best: dict[str, int] | None = None
    best_size = None
    for strategy in (_greedy_by_size, lambda bs: _two_ended(bs, bound)):
        strategy(buffers)
        size = max((b.offset + b.size for b in buffers), default=0)
        if best_size is None or size < best_size:
            best_size, best = size, {b.key: b.offset for b in buffers}
    for b in buffers:
        b.offset = best[b.key]


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

    _place_best(buffers)

    arena = _aligned(max((b.offset + b.size for b in buffers), default=0))
    tensor_offsets = {}
    for m, tensor in enumerate(graph.tensors):
        r = find(m)
        if tensor.data is None and r in lifetimes:
            tensor_offsets[m] = next(b.offset for b in buffers if b.key == f"t{r}")
    scratch_offsets = {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")}
    return MemoryPlan(arena, tensor_offsets, scratch_offsets, buffers)
