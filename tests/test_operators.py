"""The operator table (compiler/lowering/operator_table.py) is the one list of what the native
runtime runs, and each constraint on an operator is declared once beside its check: the lowering
registry, the refusals, `tinyml-ptq operators` and docs/operators.md all come from them or are
held to them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.compiler.ir import Graph, Operator, Quantization, Tensor
from tinyml_ptq.compiler.lowering import (KERNEL_SETS, UnsupportedOperator, declared_constraints, general_constraints,
                                          lower_graph, operator_constraints, own_kernel_sets, registered_operators,
                                          supported_operators)
from tinyml_ptq.compiler.lowering.operator_table import INT16X8_OPERATORS, OPERATOR_TABLE
from tinyml_ptq.compiler.operators import MARKDOWN_BEGIN, MARKDOWN_END, operators_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operators.md"
LOWERING = ROOT / "tinyml_ptq" / "compiler" / "lowering"


def test_the_registry_lowers_exactly_the_operators_of_the_table():
    assert registered_operators() == supported_operators()
    listed = [opcode for row in OPERATOR_TABLE for opcode in row.opcodes]
    assert len(listed) == len(set(listed))  # each operator in one row
    assert all(set(row.int16x8) <= set(row.opcodes) for row in OPERATOR_TABLE)


def test_docs_table_is_the_one_the_table_renders():
    text = DOC.read_text()
    start = text.index(MARKDOWN_BEGIN)
    end = text.index(MARKDOWN_END) + len(MARKDOWN_END) + 1
    assert text[start:end] == operators_markdown(), \
        "docs/operators.md is stale: paste in the output of 'tinyml-ptq operators --markdown'"
    for declared in declared_constraints():
        assert declared.doc.replace("|", "\\|") in text


def _lowering_modules() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text()) for path in sorted(LOWERING.glob("*.py"))}


def test_only_the_registry_builds_a_refusal_every_other_one_quotes_a_declared_constraint():
    for name, tree in _lowering_modules().items():
        built = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id == "UnsupportedOperator"]
        assert name == "__init__.py" or not built, f"{name} builds UnsupportedOperator at lines {built}"


def test_every_constraint_is_declared_at_module_level_and_checked():
    declared, refused = [], set()
    for tree in _lowering_modules().values():
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == "constraint"):
                declared += [target.id for target in node.targets]
        refused |= {node.value.id for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                    and node.attr == "refusal" and isinstance(node.value, ast.Name)}
    constraints = declared_constraints()
    assert len(declared) == len(set(declared)) == len(constraints), "one name per constraint, all at module level"
    assert set(declared) == refused, f"declared but never refused: {sorted(set(declared) - refused)}"
    docs = [c.doc for c in constraints]
    assert len(docs) == len(set(docs)), "two constraints say the same thing"


def test_a_refusal_quotes_the_constraint_that_failed():
    q = Quantization(np.array([0.05], np.float32), np.array([0], np.int64))
    tensors = [Tensor(0, "in", (1, 4, 4, 2), "int8", q),
               Tensor(1, "w", (3, 1, 1, 2), "int8", q, np.ones((3, 1, 1, 2), np.int8)),
               Tensor(2, "out", (1, 4, 4, 3), "int8", q)]
    graph = Graph("m", tensors, [Operator(0, "CONV_2D", [0, 1, -1], [2], {"stride_h": 0, "stride_w": 1})], [0], [2])
    stride = next(c for c in operator_constraints("CONV_2D") if "stride" in c.doc)
    with pytest.raises(UnsupportedOperator) as info:
        lower_graph(graph)
    assert str(info.value) == f"CONV_2D (node 0) has stride (0, 1) and dilation (1, 1); supported: {stride.doc}"


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
    with pytest.raises(UnsupportedOperator) as info:
        lower_graph(_graph("HARD_SWISH", "int16"))
    assert str(info.value).startswith("HARD_SWISH (node 0) has int16 tensor 'in'; supported: int16 activations (an "
                                      f"int16x8 model) on {', '.join(INT16X8_OPERATORS)}; --runtime tflm runs")


def test_operators_command_in_its_three_formats(capsys):
    assert main(["operators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [op for row in OPERATOR_TABLE for op in row.opcodes]
    assert lines[0].split() == ["CONV_2D", "own", "kernels", "dsp,helium,scalar", "int16x8", "yes"]
    assert main(["operators", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    entries = printed["operators"]
    assert {e["opcode"] for e in entries if e["int16x8"]} == set(INT16X8_OPERATORS)
    assert printed["general_constraints"] == [c.doc for c in general_constraints()]
    assert next(e for e in entries if e["opcode"] == "CONV_2D")["constraints"] == \
        [c.doc for c in operator_constraints("CONV_2D")]
    assert main(["operators", "--markdown"]) == 0
    assert capsys.readouterr().out == operators_markdown()
    assert main(["operators", "--json", "--markdown"]) == 2
    assert capsys.readouterr().err.startswith("error: --json and --markdown")
