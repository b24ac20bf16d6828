"""The operator table (compiler/lowering/operator_table.py) is the one list of what the native
runtime runs: the lowering registry, the refusals, `tinyml-ptq operators` and
docs/operators.md all come from it or are held to it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.compiler.ir import Graph, Operator, Quantization, Tensor
from tinyml_ptq.compiler.lowering import (KERNEL_SETS, UnsupportedOperator, lower_graph, own_kernel_sets,
                                          registered_operators, supported_operators)
from tinyml_ptq.compiler.lowering.operator_table import INT16X8_OPERATORS, OPERATOR_TABLE
from tinyml_ptq.compiler.operators import MARKDOWN_HEADER, operators_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "operators.md"


def test_the_registry_lowers_exactly_the_operators_of_the_table():
    assert registered_operators() == supported_operators()
    listed = [opcode for row in OPERATOR_TABLE for opcode in row.opcodes]
    assert len(listed) == len(set(listed))  # each operator in one row
    assert all(set(row.int16x8) <= set(row.opcodes) for row in OPERATOR_TABLE)


def test_docs_table_is_the_one_the_table_renders():
    text = DOC.read_text()
    start = text.index(MARKDOWN_HEADER[0])
    end = text.index("\n\n", start) + 1
    assert text[start:end] == operators_markdown(), \
        "docs/operators.md is stale: paste in the output of 'tinyml-ptq operators --markdown'"


def test_own_kernels_come_from_the_registry():
    assert own_kernel_sets("CONV_2D") == ["dsp", "helium", "scalar"]
    assert own_kernel_sets("GATHER") == []
    for row in OPERATOR_TABLE:
        for opcode in row.opcodes:
            assert set(own_kernel_sets(opcode)) <= set(KERNEL_SETS[1:])


def _graph(opcode: str, dtype: str = "int8") -> Graph:
    q = Quantization(np.array([0.05], np.float32), np.array([0], np.int64))
    tensors = [Tensor(0, "in", (1, 4), dtype, q), Tensor(1, "out", (1, 4), dtype, q)]
    return Graph("m", tensors, [Operator(0, opcode, [0], [1], {})], [0], [1])


def test_an_operator_outside_the_table_is_refused_listing_the_table():
    with pytest.raises(UnsupportedOperator) as info:
        lower_graph(_graph("TILE"))
    message = str(info.value)
    assert message.startswith("unsupported operator TILE (node 0); supported: ")
    assert message.split("supported: ")[1].split(", ") == supported_operators()


def test_an_int16_operator_without_a_16x8_kernel_is_refused_listing_those_with_one():
    assert "HARD_SWISH" not in INT16X8_OPERATORS
    with pytest.raises(UnsupportedOperator, match=r"the native runtime has no int16x8 HARD_SWISH \(it runs "
                                                  + ", ".join(INT16X8_OPERATORS) + " in int16x8\\)"):
        lower_graph(_graph("HARD_SWISH", "int16"))


def test_operators_command_in_its_three_formats(capsys):
    assert main(["operators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [op for row in OPERATOR_TABLE for op in row.opcodes]
    assert lines[0].split() == ["CONV_2D", "own", "kernels", "dsp,helium,scalar", "int16x8", "yes"]
    assert main(["operators", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["opcode"] for e in entries if e["int16x8"]} == set(INT16X8_OPERATORS)
    assert main(["operators", "--markdown"]) == 0
    assert capsys.readouterr().out == operators_markdown()
    assert main(["operators", "--json", "--markdown"]) == 2
    assert capsys.readouterr().err.startswith("error: --json and --markdown")
