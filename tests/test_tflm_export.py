"""The TFLM route of `generate` (issue #6): resolver, arena size, model data, host-compiled pieces.

TFLM's C++ sources are not available here, so the generated project is checked
structurally and by compiling what does not need TFLM: model_data.cc,
model_settings.h and the protocol app against the TFLM model.h.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main as cli_main
from tinyml_ptq.compiler.ir import Graph, Operator, Quantization, Tensor
from tinyml_ptq.compiler.tflite_reader import read_tflite
from tinyml_ptq.compiler.tflm_arena import HOST_LP64, estimate_tflm_arena
from tinyml_ptq.compiler.tflm_export import TFLM_BUILTIN_OPS, export_tflm_project, parse_resolver, resolver_calls
from tinyml_ptq.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
from conftest import SHARED_MODELS as MLPERF  # noqa: E402  (examples/models/mlperf_tiny)

MLPERF_MODELS = ["ad01_int8", "kws_ref_model_int8", "resnet8_cifar10_int8", "vww_96_int8"]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="session")
def digits_tflite(tmp_path_factory) -> Path:
    from tinyml_ptq.quantization.quantize import quantize

    out = tmp_path_factory.mktemp("digits") / "digits.tflite"
    quantize(DIGITS / "digits_cnn.keras", str(DIGITS / "calib.npz"), out, samples=100)
    return out


def _model(request, which: str) -> Path:
    if which == "digits":
        return request.getfixturevalue("digits_tflite")
    return MLPERF / f"{which}.tflite"


ALL_MODELS = ["digits", *MLPERF_MODELS]


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


def test_arena_constants_are_derived_for_each_kernel_set(request, tmp_path):
    sizes = {}
    for which in ("ad01_int8", "kws_ref_model_int8"):
        model = _model(request, which)
        result = export_tflm_project(model, tmp_path / which, board="mps2-an386")
        settings = (tmp_path / which / "model" / "model_settings.h").read_text()
        graph = read_tflite(model)
        for kernels, constant in (("reference", "Reference"), ("cmsis_nn", "CmsisNn")):
            estimate = estimate_tflm_arena(graph, kernels, dsp=True)
            assert int(re.search(rf"{constant}TensorArenaSize = (\d+);", settings).group(1)) == estimate.arena_bytes
            # The derivation is written out, component by component.
            assert f"// {kernels} kernels, " in settings
            assert f"= {estimate.steady} B allocated after AllocateTensors()" in settings
            assert f"= {estimate.need} B needed" in settings
        assert result.kernels == "cmsis_nn" and result.arena == estimate_tflm_arena(graph, "cmsis_nn", dsp=True)
        meta = json.loads((tmp_path / which / "project.json").read_text())
        assert meta["arena_bytes"] == result.arena_bytes and meta["arena_estimate"] == result.arena.to_dict()
        sizes[which] = result.arena_bytes
    assert sizes["ad01_int8"] != sizes["kws_ref_model_int8"]


@pytest.mark.parametrize("which", ALL_MODELS)
@pytest.mark.parametrize("kernels", ["reference", "cmsis_nn"])
def test_arena_estimate_adds_up(request, which, kernels):
    estimate = estimate_tflm_arena(read_tflite(_model(request, which)), kernels)
    parts = ("activations", "kernel_scratch", "interpreter", "eval_tensors", "node_registrations", "builtin_data",
             "op_data", "channel_data", "scratch_handles", "io_tensors")
    assert estimate.steady == sum(getattr(estimate, p) for p in parts)
    assert estimate.need == -(-(estimate.steady + estimate.transient) // 16) * 16
    assert estimate.arena_bytes == estimate.need + estimate.margin
    assert estimate.assumed_ops == []


def _one_op_graph(opcode: str, x_shape, w_shape, y_shape, options=None) -> Graph:
    q = Quantization(np.array([0.5], dtype=np.float32), np.array([0], dtype=np.int64))
    tensors = [Tensor(0, "x", x_shape, "int8", q), Tensor(1, "y", y_shape, "int8", q)]
    inputs = [0]
    if w_shape is not None:
        tensors.append(Tensor(2, "w", w_shape, "int8", q, np.zeros(w_shape, dtype=np.int8)))
        inputs.append(2)
    return Graph("m", tensors, [Operator(0, opcode, inputs, [1], options or {})], [0], [1])


@pytest.mark.parametrize("opcode,x,w,y,dsp_scratch,plain_scratch", [
    # arm_avgpool_s8_get_buffer_size(): one int32 per channel, with DSP only
    ("AVERAGE_POOL_2D", (1, 2, 2, 64), None, (1, 1, 1, 64), 4 * 64, 0),
    # arm_depthwise_conv_wrapper_s8_get_buffer_size(), not 3x3: in_ch * kh * kw int16, with DSP only
    ("DEPTHWISE_CONV_2D", (1, 5, 5, 8), (1, 5, 5, 8), (1, 1, 1, 8), 8 * 5 * 5 * 2, 0),
    # ... 3x3 with padding <= 1 runs arm_depthwise_conv_3x3_s8, without a buffer
    ("DEPTHWISE_CONV_2D", (1, 3, 3, 8), (1, 3, 3, 8), (1, 1, 1, 8), 0, 0),
    # arm_convolve_wrapper_s8_get_buffer_size(): im2col of 2 columns of in_ch * kh * kw (to 4) int16
    ("CONV_2D", (1, 3, 3, 3), (4, 3, 3, 3), (1, 1, 1, 4), 2 * 28 * 2, 2 * 28 * 2),
    # ... 1x1, stride 1: the fast kernel's buffer is 0 with GCC
    ("CONV_2D", (1, 2, 2, 8), (4, 1, 1, 8), (1, 2, 2, 4), 0, 0),
])
def test_cmsis_nn_scratch_is_what_its_get_buffer_size_returns(opcode, x, w, y, dsp_scratch, plain_scratch):
    """One operator, so tensors and scratch are all alive at once: the scratch adds its size to the plan."""
    graph = _one_op_graph(opcode, x, w, y, {"padding": 1, "stride_w": 1, "stride_h": 1})
    for dsp, scratch in ((True, dsp_scratch), (False, plain_scratch)):
        estimate = estimate_tflm_arena(graph, "cmsis_nn", dsp=dsp)
        assert estimate.kernel_scratch == -(-scratch // 16) * 16, (dsp, estimate)
        assert estimate.target.endswith("DSP extension") and ("no DSP" in estimate.target) != dsp
    assert estimate_tflm_arena(graph, "reference").kernel_scratch == 0


def test_operators_without_a_recipe_are_estimated_and_named():
    graph = _one_op_graph("MUL", (1, 8), None, (1, 8))
    graph.operators[0].inputs = [0, 0]
    estimate = estimate_tflm_arena(graph, "reference")
    assert estimate.assumed_ops == ["MUL"]
    assert estimate.op_data >= 128 and estimate.builtin_data >= 64


def test_host_project_sizes_the_arena_for_64_bit_structs(request, tmp_path):
    model = _model(request, "kws_ref_model_int8")
    result = export_tflm_project(model, tmp_path / "p", board="host")
    settings = (tmp_path / "p" / "model" / "model_settings.h").read_text()
    assert result.arena == estimate_tflm_arena(read_tflite(model), "reference", abi=HOST_LP64)
    assert "CmsisNn" not in settings and "// reference kernels, host LP64 (64-bit):" in settings


@pytest.mark.parametrize("which", ["digits", "kws_ref_model_int8"])
def test_model_data_and_settings_compile_and_hold_the_exact_bytes(request, which, tmp_path):
    model = _model(request, which)
    result = export_tflm_project(model, tmp_path / "p")
    src = tmp_path / "p" / "model"
    sym = f"g_{result.symbol}_model_data"
    name = "".join(p[:1].upper() + p[1:] for p in result.symbol.split("_"))
    graph = read_tflite(model)
    x = graph.tensors[graph.inputs[0]]
    reference = estimate_tflm_arena(graph, "reference")  # built without CMSIS_NN
    (tmp_path / "dump.cc").write_text(
        "#include <cstdint>\n#include <cstdio>\n#include \"model_data.h\"\n#include \"model_settings.h\"\n"
        f"static_assert(k{name}InputSize == {x.nbytes}, \"input size\");\n"
        f"static_assert(k{name}InputZeroPoint == {x.zero_point}, \"input zero point\");\n"
        f"static_assert(k{name}TensorArenaSize == {reference.arena_bytes}, \"arena\");\n"
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
    # Built with CMSIS-NN, the arena is the CMSIS-NN derivation; the measuring build bisects below twice it.
    for defines, expected in ((["-DCMSIS_NN"], result.arena_bytes),
                              (["-DCMSIS_NN", "-DTP_TFLM_MEASURE_ARENA=1"], 2 * result.arena_bytes)):
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", *defines, "-fsyntax-only", "-I", str(src),
                        "-x", "c++", "-"], input=(
            f'#include "model_settings.h"\nstatic_assert(k{name}TensorArenaSize == {expected}, "arena");\n'),
            text=True, check=True)


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
                   "Allocate(model, *resolver, sizeof(model_arena))", "arena_used_bytes()", "Invoke()",
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
    import tinyml_ptq.compiler.tflm_export as tflm

    model = MLPERF / "ad01_int8.tflite"
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
    from tinyml_ptq.cli import main

    from conftest import AD01_MODEL

    monkeypatch.delenv("TFLM_DIR", raising=False)
    project = tmp_path / "tflm"
    assert main(["generate", str(AD01_MODEL), "-o", str(project), "--runtime", "tflm"]) == 0
    assert "--tflm-dir" in capsys.readouterr().out
    assert main(["build", str(project)]) == 2
    assert "TensorFlow Lite Micro project; give --tflm-dir" in capsys.readouterr().err
    assert main(["build", str(project), "--tflm-dir", str(tmp_path)]) == 2
    assert "not a TFLM source tree" in capsys.readouterr().err


def test_build_of_a_tflm_project_from_an_earlier_version_asks_to_regenerate(tmp_path):
    from tinyml_ptq.target.boards import get_board
    from tinyml_ptq.target.build import tflm_make_args

    with pytest.raises(UserError, match="lacks tflm_build_type, tflm_target_arch: .* generate it again"):
        tflm_make_args({"runtime": "tflm", "kernels": "cmsis_nn"}, get_board("mps2-an386"), tmp_path, [])
