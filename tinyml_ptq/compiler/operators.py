"""What the native runtime supports, per operator, from the operator table and the lowering
registry: for `tinyml-ptq operators` (plain lines or JSON) and the table in docs/operators.md."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .lowering import own_kernel_sets
from .lowering.operator_table import OPERATOR_TABLE

MARKDOWN_HEADER = ("| operator | own kernels | int16x8 | constraints |", "|---|---|---|---|")


@dataclass
class OperatorSupport:
    opcode: str
    own_kernels: list[str]  # optimized kernel sets with a kernel of their own; the others run the reference one
    int16x8: bool
    constraints: str


def operator_support() -> list[OperatorSupport]:
    """One entry per supported operator, in the table's order."""
    return [OperatorSupport(opcode, own_kernel_sets(opcode), opcode in row.int16x8, row.constraints)
            for row in OPERATOR_TABLE for opcode in row.opcodes]


def operators_json() -> list[dict]:
    return [asdict(entry) for entry in operator_support()]


def operators_markdown() -> str:
    """The table of docs/operators.md: one line per row of the operator table."""
    lines = list(MARKDOWN_HEADER)
    for row in OPERATOR_TABLE:
        kernels = {opcode: own_kernel_sets(opcode) for opcode in row.opcodes}
        line = f"| {', '.join(row.opcodes)} | {_per_row(kernels)} | {_int16x8_cell(row)} | {row.constraints} |"
        lines.append(re.sub(r"\|  (?=\|)", "| ", line))  # an empty cell is "| |"
    return "\n".join(lines) + "\n"


def _per_row(kernels: dict[str, list[str]]) -> str:
    """'dsp, helium' when every operator of the row has the same sets, else per operator."""
    distinct = {tuple(sets) for sets in kernels.values()}
    if len(distinct) == 1:
        return ", ".join(distinct.pop())
    return "; ".join(f"{opcode}: {', '.join(sets)}" for opcode, sets in kernels.items() if sets)


def _int16x8_cell(row) -> str:
    if set(row.int16x8) == set(row.opcodes):
        return "yes"
    return ", ".join(row.int16x8)
