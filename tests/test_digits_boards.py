"""The digits example on every emulated board and on the host: bit-exact, and as accurate as float."""

import shutil

import pytest

from tinyml_ptq import build, generate, run
from tinyml_ptq.compiler.tflite_reader import read_tflite

from conftest import DIGITS_DIR

BOARDS = ["mps2-an386", "mps2-an500", "mps2-an385", "mps2-an505", "mps3-an547", "host"]


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
def test_digits_on_board_is_exact_and_accurate(digits_quantized, board, tmp_path):
    if board != "host" and shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    project = generate(digits_quantized.output, tmp_path / "fw", board=board).project_dir
    build(project)
    result = run(project, str(DIGITS_DIR / "eval.npz"))
    float_accuracy = digits_quantized.report["accuracy"]["float"]
    assert result.samples == 360
    assert result.exact == 1.0, f"outputs differ from TFLM on samples {result.mismatches[:10]}"
    assert result.accuracy_device == result.accuracy_reference
    assert abs(result.accuracy_device - float_accuracy) * 100 <= 1.5
    assert result.latency_unit == ("ns" if board == "host" else "instructions")
    graph = read_tflite(digits_quantized.output)
    assert [op.op for op in result.per_op] == [op.opcode for op in graph.operators]
