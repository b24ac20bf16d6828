"""The TFLM route of `generate` (issue #6): resolver, arena size, model data, host-compiled pieces.

TFLM's C++ sources are not available here, so the generated project is checked
structurally and by compiling what does not need TFLM: model_data.cc,
model_settings.h and the protocol app against the TFLM model.h.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main as cli_main
from tinyml_ptq.errors import UserError
from tinyml_ptq.ir import Graph, Operator, Quantization, Tensor
from tinyml_ptq.tflite_reader import read_tflite
from tinyml_ptq.tflm_export import (TFLM_BUILTIN_OPS, estimate_tflm_arena, export_tflm_project, parse_resolver,
                                    resolver_calls)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MLPERF = SHARED / "models" / "mlperf_tiny"
MLPERF_MODELS = ["ad01_int8", "kws_ref_model_int8", "resnet8_cifar10_int8", "vww_96_int8"]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="session")
def digits_tflite(tmp_path_factory) -> Path:
    if not (DIGITS / "digits_cnn.keras").is_file():
        pytest.skip("examples/digits/digits_cnn.keras is absent")
    from tinyml_ptq.quantize import quantize

    out = tmp_path_factory.mktemp("digits") / "digits.tflite"
    quantize(DIGITS / "digits_cnn.keras", str(DIGITS / "calib.npz"), out, samples=100)
    return out


def _model(request, which: str) -> Path:
    if which == "digits":
        return request.getfixturevalue("digits_tflite")
    path = MLPERF / f"{which}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


ALL_MODELS = ["digits", *MLPERF_MODELS]


def _recorded_arena_total(model: Path) -> int:
    """TFLM's RecordingMicroAllocator total for `model` (printed by the C++ side to stderr)."""
    script = (
        "import sys, numpy as np\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        "it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=8 << 20)\n"
        "d = it.get_input_details(0)\n"
        "it.set_input(np.zeros(d['shape'], dtype=d['dtype']), 0)\n"
        "it.invoke()\n"
        "it.print_allocations()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, check=True)
    match = re.search(r"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
    assert match, proc.stderr[-2000:]
    return int(match.group(1))


@pytest.mark.parametrize("which", ALL_MODELS)
def test_resolver_registers_exactly_the_models_operators(request, which, tmp_path):
    model = _model(request, which)
    result = export_tflm_project(model, tmp_path / "p")
    graph = read_tflite(model)
    n, calls = parse_resolver((tmp_path / "p" / "model" / "main.cc").read_text())
    expected = [TFLM_BUILTIN_OPS[op] for op in graph.opcodes()]
    assert calls == expected  # one Add...() per distinct operator, in order of first use
    assert len(set(calls)) == len(calls) == n == len(set(op.opcode for op in graph.operators))
    assert [m for _, m in result.resolver] == calls
    settings = (tmp_path / "p" / "model" / "model_settings.h").read_text()
    assert re.search(rf"NumRegisteredOps = {n};", settings)


@pytest.mark.slow
@pytest.mark.parametrize("which", ALL_MODELS)
def test_arena_estimate_covers_tflm_recording_allocator(request, which):
    model = _model(request, which)
    estimate = estimate_tflm_arena(read_tflite(model))
    recorded = _recorded_arena_total(model)
    assert estimate.derived_total >= recorded, (estimate, recorded)
    assert recorded <= estimate.arena_bytes < 1.5 * recorded, (estimate.arena_bytes, recorded)


def test_arena_constant_is_derived_from_the_model(request, tmp_path):
    sizes = {}
    for which in ("ad01_int8", "kws_ref_model_int8"):
        model = _model(request, which)
        export_tflm_project(model, tmp_path / which)
        settings = (tmp_path / which / "model" / "model_settings.h").read_text()
        estimate = estimate_tflm_arena(read_tflite(model))
        constant = int(re.search(r"ReferenceTensorArenaSize = (\d+);", settings).group(1))
        assert constant == estimate.arena_bytes
        assert estimate.arena_bytes == -(-int(estimate.derived_total * 1.1) // 1024) * 1024
        assert f"= {estimate.derived_total} B" in settings  # the derivation is written out
        assert "100 * 1024" not in settings
        sizes[which] = constant
    assert sizes["ad01_int8"] != sizes["kws_ref_model_int8"]


@pytest.mark.parametrize("which", ["digits", "kws_ref_model_int8"])
def test_model_data_and_settings_compile_and_hold_the_exact_bytes(request, which, tmp_path):
    model = _model(request, which)
    result = export_tflm_project(model, tmp_path / "p")
    src = tmp_path / "p" / "model"
    sym = f"g_{result.symbol}_model_data"
    name = "".join(p[:1].upper() + p[1:] for p in result.symbol.split("_"))
    graph = read_tflite(model)
    x = graph.tensors[graph.inputs[0]]
    (tmp_path / "dump.cc").write_text(
        "#include <cstdint>\n#include <cstdio>\n#include \"model_data.h\"\n#include \"model_settings.h\"\n"
        f"static_assert(k{name}InputSize == {x.nbytes}, \"input size\");\n"
        f"static_assert(k{name}InputZeroPoint == {x.zero_point}, \"input zero point\");\n"
        f"static_assert(k{name}TensorArenaSize == {result.arena_bytes}, \"arena\");\n"
        f"static_assert(k{name}InputShape[k{name}InputDims - 1] == {x.shape[-1]}, \"shape\");\n"
        "int main() {\n"
        f"  if (reinterpret_cast<uintptr_t>({sym}) % 16) return 2;\n"
        f"  std::fwrite({sym}, 1, {sym}_size, stdout); return 0; }}\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(src), str(tmp_path / "dump.cc"),
                    str(src / "model_data.cc"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == model.read_bytes()
    # With CMSIS-NN the arena grows by the scratch allowance.
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-DCMSIS_NN", "-fsyntax-only", "-I", str(src),
                    "-x", "c++", "-"], input=(
        f'#include "model_settings.h"\nstatic_assert(k{name}TensorArenaSize == '
        f"{result.arena_bytes + result.arena.cmsis_nn_scratch}, \"cmsis arena\");\n"), text=True, check=True)


def test_protocol_app_compiles_against_the_tflm_model_api(request, tmp_path):
    model = _model(request, "kws_ref_model_int8")
    export_tflm_project(model, tmp_path / "p")
    p = tmp_path / "p"
    for src in ("app/main.c", "app/protocol.c"):
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Dmain=tp_app_main", "-Iapp", "-Imodel",
                        "-c", src, "-o", str(tmp_path / (Path(src).stem + ".o"))], cwd=p, check=True)
    header = (p / "model" / "model.h").read_text()
    native = (ROOT / "templates" / "model.h.j2").read_text()
    for decl in ("int8_t *{{ prefix }}_input(int32_t index);", "void {{ prefix }}_invoke(void);",
                 "void {{ prefix }}_invoke_profiled({{ prefix }}_clock_fn clock, uint32_t *op_ticks);"):
        assert decl in native
        assert decl.replace("{{ prefix }}", "model") in header


def test_main_cc_uses_the_public_tflm_api(request, tmp_path):
    model = _model(request, "resnet8_cifar10_int8")
    export_tflm_project(model, tmp_path / "p")
    main_cc = (tmp_path / "p" / "model" / "main.cc").read_text()
    for needle in ("tflite::GetModel(g_resnet8_cifar10_int8_model_data)", "TFLITE_SCHEMA_VERSION",
                   "tflite::MicroInterpreter(model, resolver, model_arena, arena_bytes, nullptr, timer)",
                   "Allocate(model, *resolver, sizeof(model_arena)) != kTfLiteOk", "arena_used_bytes()", "Invoke()",
                   "alignas(16) uint8_t model_arena[kResnet8Cifar10Int8TensorArenaSize];"):
        assert needle in main_cc, needle
    # Braces balance, and every op name the device reports is a model operator.
    assert main_cc.count("{") == main_cc.count("}")
    names = re.findall(r'^    "([A-Z0-9_]+)",$', main_cc, re.M)
    assert names == [op.opcode for op in read_tflite(model).operators]


def _tiny_graph(opcodes: list[str]) -> Graph:
    q = Quantization(np.array([0.5], dtype=np.float32), np.array([0], dtype=np.int64))
    t = Tensor(0, "x", (1, 4), "int8", q)
    return Graph("m", [t], [Operator(i, op, [0], [0]) for i, op in enumerate(opcodes)], [0], [0])


def test_operators_tflm_lacks_or_names_differently_are_reported():
    with pytest.raises(UserError) as info:
        resolver_calls(_tiny_graph(["CONV_2D", "SELECT", "REDUCE_PROD", "CUSTOM:Window", "CUSTOM:my*/op"]))
    msg = str(info.value)
    assert "SELECT (TFLM implements SELECT_V2 only (AddSelectV2)" in msg
    assert "REDUCE_PROD (not in TFLM's MicroMutableOpResolver)" in msg
    assert "'SignalWindow' (AddWindow)" in msg
    assert "*/" not in msg and "CONV_2D" not in msg
    calls = resolver_calls(_tiny_graph(["PADV2", "CUSTOM:TFLite_Detection_PostProcess", "PADV2"]))
    assert calls == [("PADV2", "AddPadV2"), ("CUSTOM:TFLite_Detection_PostProcess", "AddDetectionPostprocess")]


def test_unsupported_model_writes_nothing(monkeypatch, tmp_path):
    import tinyml_ptq.tflm_export as tflm

    model = MLPERF / "ad01_int8.tflite"
    if not model.is_file():
        pytest.skip("shared models absent")
    monkeypatch.setattr(tflm, "read_tflite", lambda path: _tiny_graph(["REDUCE_PROD"]))
    with pytest.raises(UserError, match="REDUCE_PROD"):
        export_tflm_project(model, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_cli_generate_runtime_tflm_and_makefile_asks_for_tflm_dir(request, tmp_path, capsys):
    model = _model(request, "ad01_int8")
    out = tmp_path / "proj"
    assert cli_main(["generate", str(model), "-o", str(out), "--runtime", "tflm", "--board", "mps2-an386"]) == 0
    meta = json.loads((out / "project.json").read_text())
    assert meta["runtime"] == "tflm" and meta["tflm_resolver"] == ["AddFullyConnected"]
    make = out / "Makefile"
    text = make.read_text()
    assert "TARGET_ARCH ?= cortex-m4+fp" in text and "OPTIMIZED_KERNEL_DIR ?= cmsis_nn" in text
    proc = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0 and "TFLM_DIR is not set" in proc.stderr
    proc = subprocess.run(["make", "-C", str(out), f"TFLM_DIR={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode != 0 and "is not a TensorFlow Lite Micro source tree" in proc.stderr
    assert subprocess.run(["make", "-C", str(out), "clean"], capture_output=True).returncode == 0
    # A second generate replaces the project; a non-project folder is refused.
    assert cli_main(["generate", str(model), "-o", str(out), "--runtime", "tflm"]) == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    assert cli_main(["generate", str(model), "-o", str(tmp_path / "other"), "--runtime", "tflm"]) == 2
    assert "not a tinyml-ptq firmware project" in capsys.readouterr().err


def test_arm_objects_of_the_app_and_board_build_with_the_tflm_model_header(request, tmp_path):
    """The C side of the TFLM project cross-compiles for the board as it is (no TFLM needed)."""
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc absent")
    model = _model(request, "ad01_int8")
    export_tflm_project(model, tmp_path / "p", board="mps2-an386")
    p = tmp_path / "p"
    flags = ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-std=c99", "-Wall",
             "-Wextra", "-Werror", "-Iapp", "-Iboard", "-Imodel", "-DTP_FAULT_TEST=0"]
    for src in sorted(p.glob("app/*.c")) + sorted(p.glob("board/*.c")):
        extra = ["-Dmain=tp_app_main"] if src.name == "main.c" else []
        subprocess.run(["arm-none-eabi-gcc", *flags, *extra, "-c", str(src.relative_to(p)), "-o",
                        str(tmp_path / f"{src.stem}.o")], cwd=p, check=True)
    subprocess.run(["arm-none-eabi-g++", "-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                    "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c", "model/model_data.cc", "-o",
                    str(tmp_path / "model_data.o")], cwd=p, check=True)
    assert np.frombuffer(model.read_bytes()[4:8], dtype=np.uint8).tobytes() == b"TFL3"


def test_build_of_a_tflm_project_asks_for_the_tflm_tree(tmp_path, capsys, monkeypatch):
    from conftest import AD01_MODEL
    from tinyml_ptq.cli import main

    if not AD01_MODEL.exists():
        pytest.skip("shared models folder absent")
    monkeypatch.delenv("TFLM_DIR", raising=False)
    project = tmp_path / "tflm"
    assert main(["generate", str(AD01_MODEL), "-o", str(project), "--runtime", "tflm"]) == 0
    assert "--tflm-dir" in capsys.readouterr().out
    assert main(["build", str(project)]) == 2
    assert "TensorFlow Lite Micro project; give --tflm-dir" in capsys.readouterr().err
    assert main(["build", str(project), "--tflm-dir", str(tmp_path)]) == 2
    assert "not a TFLM source tree" in capsys.readouterr().err
