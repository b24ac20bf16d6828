"""Lowering: each IR operator becomes one `Step`, a call into the C runtime.

A lowering function computes everything that can be known ahead of time
(multipliers, shifts, clamp ranges, padding, lookup tables) and returns it as
const data plus a C call. Calls and struct initializers refer to buffers with
`string.Template` placeholders, filled in by the code generator after memory
planning:

    $tN       pointer to tensor N (in the arena, or its const weight array)
    $scratch  this step's scratch buffer (`scratch_bytes` long)
    ${p}      this step's unique prefix for its own arrays and structs
              (write `${p}params`: braces keep the name apart)

A step may offer to run in place (`InPlace`): its output then starts at the same
arena offset as one of its inputs and overwrites it. The planner decides, per
step, whether to take the offer (only when that input dies at the step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...core.errors import UserError
from ..ir import Graph, Operator
from .operator_table import SUPPORTED_OPERATORS


@dataclass
class CArray:
    """A const array emitted for one step; referenced as `$p<name>`."""

    name: str
    ctype: str  # int8_t, int16_t, int32_t, uint8_t
    values: np.ndarray


@dataclass
class CStruct:
    """A const struct emitted for one step; referenced as `$p<name>`."""

    ctype: str
    name: str
    initializer: str  # C initializer text, may contain placeholders


@dataclass
class InPlace:
    """How a step can write its output over one of its inputs, if that input dies here.

    The planner then gives the input and the output one buffer (same start, the
    larger size) and the step runs `call` (or its regular call when `call` is
    empty: the kernel reads element i before it writes element i), with
    `scratch_bytes` of scratch for `$scratch`, with `header`, `structs` and `sources` added.
    """

    inputs: tuple[int, ...]  # tensors the output may overwrite; the planner takes the first that dies
    call: str = ""
    header: str = ""
    sources: tuple[str, ...] = ()  # relative to firmware/runtime/kernels ("reference/x.c"): sets may mix
    scratch_bytes: int = 0
    structs: list[CStruct] = field(default_factory=list)


@dataclass
class Step:
    op: Operator
    header: str = ""  # runtime header declaring the kernel
    sources: tuple[str, ...] = ()  # runtime kernel sources this step links
    kernel_dir: str = "reference"  # folder under firmware/runtime/kernels holding `sources`
    arrays: list[CArray] = field(default_factory=list)
    structs: list[CStruct] = field(default_factory=list)
    call: str = ""  # C statement(s); empty for a pure alias
    scratch_bytes: int = 0
    alias_of: int | None = None  # output shares this input tensor's buffer (no data movement)
    inplace: InPlace | None = None  # the step can also run over a dying input (planner's choice)


class UnsupportedOperator(UserError):
    pass


class MalformedOperator(UserError):
    """An operator whose tensors contradict each other (a damaged or hand-edited model)."""


@dataclass(frozen=True)
class Constraint:
    """A condition the native runtime puts on an operator, stated once: the refusal of an
    operator that breaks it quotes `doc`, and docs/operators.md lists `doc` under each of
    `opcodes` (under every operator when `opcodes` is empty)."""

    opcodes: tuple[str, ...]
    doc: str

    def refusal(self, op: Operator, detail: str) -> UnsupportedOperator:
        """The one-line refusal: what the operator has (`detail`, after "OPCODE (node N) "), then `doc`."""
        assert not self.opcodes or op.opcode in self.opcodes, f"{op.opcode} is not under {self.doc!r}"
        return UnsupportedOperator(f"{op.opcode} (node {op.index}) {detail}; supported: {self.doc}")


_CONSTRAINTS: list[Constraint] = []


def constraint(*opcodes: str, doc: str) -> Constraint:
    """Declare a constraint on `opcodes` (none: on every operator), beside the code that checks it."""
    unknown = set(opcodes) - set(SUPPORTED_OPERATORS)
    assert not unknown, f"constraint on operators outside the table: {sorted(unknown)}"
    declared = Constraint(tuple(opcodes), doc)
    _CONSTRAINTS.append(declared)
    return declared


def declared_constraints() -> list[Constraint]:
    """Every constraint the lowering modules declare, in the order they were declared."""
    _load_all()
    return list(_CONSTRAINTS)


def general_constraints() -> list[Constraint]:
    """The constraints on every operator."""
    return [c for c in declared_constraints() if not c.opcodes]


def operator_constraints(opcode: str) -> list[Constraint]:
    """The constraints declared on `opcode` itself (the general ones apart)."""
    return [c for c in declared_constraints() if opcode in c.opcodes]


LowerFn = Callable[[Graph, Operator], Step]
_LOWERINGS: dict[str, LowerFn] = {}
# Kernel sets: "reference" (portable C, every operator), "dsp" (kernels/dsp, for cores with the
# Arm DSP extension), "helium" (kernels/helium, for cores with the M-profile Vector Extension) and
# "scalar" (kernels/scalar, portable C for cores without the DSP extension: Cortex-M0/M0+/M3).
# Each optimized set lowers an operator its own way where it registered one, else as the set it
# builds on does: helium -> dsp -> reference (every MVE core has the DSP extension), scalar -> reference.
KERNEL_SETS = ("reference", "dsp", "helium", "scalar")
_FALLBACK = {"dsp": "reference", "helium": "dsp", "scalar": "reference"}
_OPTIMIZED_LOWERINGS: dict[str, dict[str, LowerFn]] = {k: {} for k in _FALLBACK}


def lowers(*opcodes: str, kernels: str = "reference") -> Callable[[LowerFn], LowerFn]:
    """Register a lowering function for one or more builtin operators, for one kernel set."""
    table = _LOWERINGS if kernels == "reference" else _OPTIMIZED_LOWERINGS[kernels]

    def register(fn: LowerFn) -> LowerFn:
        for opcode in opcodes:
            table[opcode] = fn
        return fn

    return register


def supported_operators() -> list[str]:
    """The operators of the table (operator_table.py); the registry holds the same ones."""
    return list(SUPPORTED_OPERATORS)


def registered_operators() -> list[str]:
    """The operators with a lowering function, as the registry holds them."""
    _load_all()
    return sorted(_LOWERINGS)


def own_kernel_sets(opcode: str) -> list[str]:
    """The optimized kernel sets that lower `opcode` their own way (the others take their fallback)."""
    _load_all()
    return [kernels for kernels in KERNEL_SETS[1:] if opcode in _OPTIMIZED_LOWERINGS[kernels]]


def lower_graph(graph: Graph, kernels: str = "reference") -> list[Step]:
    """Lower every operator for the kernel set `kernels`, or fail before anything is written."""
    if kernels not in KERNEL_SETS:
        raise ValueError(f"unknown kernel set {kernels!r}; expected one of {KERNEL_SETS}")
    _load_all()
    missing: dict[str, list[int]] = {}
    for op in graph.operators:
        if op.opcode not in SUPPORTED_OPERATORS:
            missing.setdefault(op.opcode, []).append(op.index)
    if missing:  # every one at once, not just the first
        listed = ", ".join(f"{opcode} (node{'s' if len(nodes) > 1 else ''} {', '.join(map(str, nodes))})"
                           for opcode, nodes in missing.items())
        raise UnsupportedOperator(f"unsupported operator{'s' if len(missing) > 1 else ''} {listed}; "
                                  f"supported: {', '.join(supported_operators())}")
    return [_lowering_for(op.opcode, kernels)(graph, op) for op in graph.operators]


def _lowering_for(opcode: str, kernels: str) -> LowerFn:
    while kernels != "reference":
        if opcode in _OPTIMIZED_LOWERINGS[kernels]:
            return _OPTIMIZED_LOWERINGS[kernels][opcode]
        kernels = _FALLBACK[kernels]
    return _LOWERINGS[opcode]


def _load_all() -> None:
    """Import every module of this package; importing one registers its lowerings."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
