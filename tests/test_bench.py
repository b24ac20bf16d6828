"""The bench machinery on AD01 (correctness only, no timing assertions) and the build
stage's flash split, checked against binutils."""

import json
import re
import shutil
import subprocess

import pytest

from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.pipeline.bench import count_macs
from tinyml_ptq.target.build import build

from conftest import AD01_MODEL


def _nm(path, *flags):
    """(name, size, type) of the sized symbols binutils' nm lists."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", *flags, str(path)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[3], int(parts[1], 16), parts[2]))
    return rows


def test_flash_split_agrees_with_binutils(run_projects):
    if shutil.which("arm-none-eabi-nm") is None:
        pytest.skip("arm-none-eabi-nm not installed")
    project = run_projects.get("ad01", "mps2-an386")
    result = build(project)
    elf = project / "build" / "firmware.elf"
    linked = {name: (size, kind) for name, size, kind in _nm(elf)}
    # Weight tensors model_w<N> and per-step arrays/structs model_op<N>_<name> (not model_op_names).
    weights = sum(size for name, (size, kind) in linked.items()
                  if kind in "rR" and re.fullmatch(r"model_(w\d+|op\d+_\w+)", name))
    assert result.flash_split["weights"] == weights > 270_000  # AD01 has ~271 KB of weights

    for part, folder in (("kernels", "runtime"), ("app", "app"), ("board", "board")):
        defined = {name for obj in (project / "build" / "obj" / folder).rglob("*.o")
                   for name, _, kind in _nm(obj, "--defined-only") if kind in "tT"}
        # Functions of these objects that survived --gc-sections. The link map counts their
        # sections, which may end in up to 3 bytes of padding after the function nm sizes.
        kept = [size for name, (size, kind) in linked.items() if kind in "tT" and name in defined]
        assert sum(kept) > 0
        assert sum(kept) <= result.runtime_code[part] <= sum(kept) + 3 * len(kept), part
    split = result.flash_split
    assert split["runtime_code"] == sum(result.runtime_code.values())
    assert split["weights"] + split["runtime_code"] + split["other"] == result.flash_bytes
    assert split["other"] > 0


# MACs of the MLPerf Tiny reference models, as the benchmark's documentation gives them.
MLPERF_MACS = {"kws_ref_model_int8": 2_656_768, "vww_96_int8": 7_489_664, "resnet8_cifar10_int8": 12_501_632,
               "ad01_int8": 264_192}


def test_macs_counted_from_the_graph_match_the_mlperf_figures(shared_models):
    for name, macs in MLPERF_MACS.items():
        graph = parse_tflite((shared_models / f"{name}.tflite").read_bytes())
        assert count_macs(graph) == macs, name


@pytest.mark.slow
def test_bench_on_ad01_runs_tflm_and_ours_side_by_side(tmp_path, tflm_dir):
    from tinyml_ptq.cli import main

    out = tmp_path / "bench"
    status = main(["bench", "-o", str(out), "--model", str(AD01_MODEL), "--board", "mps2-an386",
                   "--samples", "2", "--no-stages", "--tflm-dir", str(tflm_dir)])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["models"]
    configurations = ["tflm/reference", "tflm/cmsis_nn", "native/reference", "native/dsp"]
    assert [f"{r['runtime']}/{r['kernels']}" for r in rows] == results["configurations"] == configurations
    assert results["tflm"]["dir"] == str(tflm_dir) and results["tflm"]["build_type"] == "release_with_logs"
    by = {f"{r['runtime']}/{r['kernels']}": r for r in rows}
    for row in rows:
        assert row["model"] == "ad01_int8" and row["board"] == "mps2-an386"
        assert row["exact"] == 1.0 and row["samples"] == 2
        assert row["macs"] == 264_192
        assert row["macs_per_instruction"] == pytest.approx(row["macs"] / row["instructions"])
        assert sum(op["instructions"] for op in row["per_op"]) <= row["instructions"]
        assert [op["op"] for op in row["per_op"]] == ["FULLY_CONNECTED"] * 10
        # Ratios are this run's own measurements divided, nothing typed in.
        assert row["vs_tflm_reference"] == pytest.approx(row["instructions"] / by["tflm/reference"]["instructions"])
        assert row["vs_tflm_cmsis_nn"] == pytest.approx(row["instructions"] / by["tflm/cmsis_nn"]["instructions"])
        assert row["weights_bytes"] + row["runtime_code_bytes"] + row["other_flash_bytes"] == row["flash_bytes"]
        assert 0 < row["arena_bytes"] <= row["arena_reserved_bytes"] < row["ram_bytes"]
    for config in ("native/reference", "native/dsp"):
        assert by[config]["arena_bytes"] <= by[config]["live_bound_bytes"] == 768
    assert by["tflm/reference"]["speedup_vs_reference"] is None
    assert by["native/reference"]["speedup_vs_reference"] == 1.0
    assert by["native/dsp"]["speedup_vs_reference"] == pytest.approx(
        by["native/reference"]["instructions"] / by["native/dsp"]["instructions"], abs=1e-3)
    assert by["tflm/cmsis_nn"]["instructions"] < by["tflm/reference"]["instructions"]
    assert set(by["tflm/reference"]["runtime_code"]) == {"tflm", "app", "board"}
    assert set(by["native/dsp"]["runtime_code"]) == {"kernels", "app", "board"}
    assert results["stages_seconds"] is None and results["throughput"] is None
    table = (out / "results.md").read_text()
    assert table.count("| ad01_int8 | mps2-an386 |") == 2 * len(rows)
    assert "| ad01_int8 | mps2-an386 | TFLM cmsis_nn |" in table


@pytest.mark.slow
def test_bench_without_a_tflm_tree_gives_our_figures_alone(tmp_path, monkeypatch, capsys):
    from tinyml_ptq.cli import main

    monkeypatch.delenv("TFLM_DIR", raising=False)
    out = tmp_path / "bench"
    assert main(["bench", "-o", str(out), "--model", str(AD01_MODEL), "--board", "mps2-an386",
                 "--samples", "1", "--no-stages"]) == 0
    assert "no TFLM tree" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["tflm"] is None and results["configurations"] == ["native/reference", "native/dsp"]
    assert all(r["vs_tflm_cmsis_nn"] is None for r in results["models"])


def test_bench_adds_helium_only_where_the_core_has_mve():
    from tinyml_ptq.pipeline.bench import CONFIGURATIONS, board_configurations

    assert board_configurations("mps3-an547") == [*CONFIGURATIONS, ("native", "dsp"), ("native", "helium")]
    for board in ("mps2-an386", "mps2-an500", "mps2-an505"):
        assert board_configurations(board) == [*CONFIGURATIONS, ("native", "dsp")]
    assert board_configurations("mps3-an547", tflm=False) == [("native", "reference"), ("native", "dsp"),
                                                              ("native", "helium")]


def test_bench_runs_scalar_not_dsp_on_cores_without_the_dsp_extension():
    from tinyml_ptq.pipeline.bench import CONFIGURATIONS, board_configurations

    for board in ("nucleo-g0b1re", "mps2-an385"):
        assert board_configurations(board) == [*CONFIGURATIONS, ("native", "scalar")]
        assert board_configurations(board, tflm=False) == [("native", "reference"), ("native", "scalar")]


def test_bench_refuses_an_unknown_board_in_one_error_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tinyml_ptq", "bench", "-o", str(tmp_path / "bench"),
                           "--board", "mps2-an386", "--board", "no-such-board", "--no-stages"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown board 'no-such-board'") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "bench").exists()  # refused before anything ran
