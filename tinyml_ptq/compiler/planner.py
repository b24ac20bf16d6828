"""Static memory planning: every activation tensor gets an offset in one arena.

Buffers (activation tensors, with aliases merged, and per-step scratch) live
from the step that writes them to the last step that reads them. Buffers whose
lifetimes overlap must not overlap in memory. Two placements are tried and the smaller kept: greedy by
size (TFLite Micro's planner) and a two-ended placement in execution order that
reaches the live-size lower bound on chain-like graphs where greedy does not.

No placement of separate buffers beats that bound; in-place steps do, by giving a
step's dying input and its output one buffer (see `lowering.InPlace`). The plan
is made with and without them and the smaller arena kept; in-place steps that run
another call are then dropped one by one where the arena does not grow without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    lower_bound: int  # live-tensor lower bound with every step's input and output apart
    inplace_steps: dict[int, int] = field(default_factory=dict)  # step -> the input its output overwrites

    def live_lower_bound(self) -> int:
        return self.lower_bound


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


def plan_memory(graph: Graph, steps: list[Step], inplace: bool = True) -> MemoryPlan:
    """Place every buffer. With `inplace`, steps that offer it (`Step.inplace`) run over
    their dying input where that makes the arena smaller; `lower_bound` stays the
    live-tensor bound of separate input and output buffers, which in-place work beats."""
    separate = _plan(graph, steps, {})
    if not inplace:
        return separate
    candidates = _inplace_candidates(graph, steps)
    if not candidates:
        return separate
    merged = _plan(graph, steps, candidates)
    if merged.arena_bytes >= separate.arena_bytes:
        return separate
    # An in-place step with its own call (row by row through a ring) costs instructions: keep
    # only those the arena needs. Dropping pairs only splits buffers, so the rest stay valid.
    for i in [i for i in candidates if steps[i].inplace.call]:
        fewer = {k: v for k, v in candidates.items() if k != i}
        plan = _plan(graph, steps, fewer)
        if plan.arena_bytes <= merged.arena_bytes:
            candidates, merged = fewer, plan
    return merged


def _groups(graph: Graph, steps: list[Step], inplace_steps: dict[int, int]):
    """Union-find roots (aliases and in-place pairs share a buffer) and each root's lifetime."""
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while t in root:
            t = root[t]
        return t

    for i, step in enumerate(steps):
        if step.alias_of is not None:
            root[step.op.outputs[0]] = find(step.alias_of)
        elif i in inplace_steps:
            root[find(step.op.outputs[0])] = find(inplace_steps[i])

    lifetimes: dict[int, list[int]] = {}

    def touch(tensor_index: int, step_index: int) -> None:
        tensor = graph.tensor(tensor_index)
        if tensor is None or tensor.is_constant:
            return
        span = lifetimes.setdefault(find(tensor_index), [step_index, step_index])
        span[0] = min(span[0], step_index)
        span[1] = max(span[1], step_index)

    for t in graph.inputs:
        touch(t, 0)
    for i, step in enumerate(steps):
        for t in step.op.inputs + step.op.outputs:
            touch(t, i)
    for t in graph.outputs:
        touch(t, max(len(steps) - 1, 0))
    return find, lifetimes


def _inplace_candidates(graph: Graph, steps: list[Step]) -> dict[int, int]:
    """Step -> the input it overwrites: the first offered input that dies at the step
    (no later reader of its buffer, no other operand reading it) while the output is a
    fresh buffer. Taken in execution order, so chains of in-place steps share one buffer."""
    chosen: dict[int, int] = {}
    for i, step in enumerate(steps):
        if step.inplace is None or step.alias_of is not None:
            continue
        find, lifetimes = _groups(graph, steps, chosen)
        out_root = find(step.op.outputs[0])
        for source in step.inplace.inputs:
            tensor = graph.tensor(source)
            if tensor is None or tensor.is_constant:
                continue
            src_root = find(source)
            if src_root == out_root or lifetimes[src_root][1] != i or lifetimes[out_root][0] != i:
                continue
            if sum(find(t) == src_root for t in step.op.inputs) > 1:
                continue  # the same buffer is read through another operand too
            chosen[i] = source
            break
    return chosen


def _plan(graph: Graph, steps: list[Step], inplace_steps: dict[int, int]) -> MemoryPlan:
    find, lifetimes = _groups(graph, steps, inplace_steps)
    sizes: dict[int, int] = {}
    for t in lifetimes:
        members = [m for m in range(len(graph.tensors)) if find(m) == t and graph.tensors[m].data is None]
        sizes[t] = max(graph.tensors[m].nbytes for m in members)

    def scratch(i: int, step: Step) -> int:
        return step.inplace.scratch_bytes if i in inplace_steps else step.scratch_bytes

    buffers = [Buffer(f"t{t}", sizes[t], span[0], span[1]) for t, span in lifetimes.items()]
    buffers += [Buffer(f"s{i}", scratch(i, s), i, i) for i, s in enumerate(steps) if scratch(i, s) > 0]
    bound = live_lower_bound(buffers)
    if inplace_steps:
        bound = _plan(graph, steps, {}).lower_bound

    _place_best(buffers)

    arena = _aligned(max((b.offset + b.size for b in buffers), default=0))
    tensor_offsets = {}
    for m, tensor in enumerate(graph.tensors):
        r = find(m)
        if tensor.data is None and r in lifetimes:
            tensor_offsets[m] = next(b.offset for b in buffers if b.key == f"t{r}")
    scratch_offsets = {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")}
    return MemoryPlan(arena, tensor_offsets, scratch_offsets, buffers, bound, dict(inplace_steps))
