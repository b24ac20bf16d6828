"""The TFLM route against a real TensorFlow Lite Micro tree (issue #13): the exported project
built with TFLM's reference kernels and with CMSIS-NN, run under QEMU, bit-exact with the TFLM
reference interpreter; the memory split, the library cache and the device's own set-up error.

The TFLM library (minutes to build) is cached by the toolkit per tree and configuration, so
each configuration is built once for the whole session (and reused by later sessions).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.run import run
from tinyml_ptq.target.build import build

from conftest import DIGITS_DIR, SHARED_MODELS

pytestmark = pytest.mark.slow

KWS = SHARED_MODELS / "kws_ref_model_int8.tflite"


class TflmProjects:
    """(model, board, kernels) -> a generated and built TFLM project, made on first use."""

    def __init__(self, root: Path, tflm_dir: Path, models: dict[str, Path]):
        self.root, self.tflm_dir, self.models = root, tflm_dir, models
        self.built: dict[tuple[str, str, str], Path] = {}

    def get(self, model: str, board: str = "mps2-an386", kernels: str = "auto") -> Path:
        key = (model, board, kernels)
        if key not in self.built:
            project = self.root / f"{model}-{board}-{kernels}"
            generate(self.models[model], project, board=board, runtime="tflm", kernels=kernels)
            build(project, tflm_dir=self.tflm_dir)
            self.built[key] = project
        return self.built[key]


@pytest.fixture(scope="session")
def tflm_projects(tmp_path_factory, tflm_dir, digits_int8_tflite) -> TflmProjects:
    if not KWS.is_file():
        pytest.fail(f"{KWS} is missing")
    return TflmProjects(tmp_path_factory.mktemp("tflm-projects"), tflm_dir,
                        {"digits": digits_int8_tflite, "kws": KWS})


def _int8_samples(path: Path, project: Path, count: int) -> Path:
    shape = json.loads((project / "project.json").read_text())["inputs"][0]["shape"]
    rng = np.random.default_rng(5)
    np.save(path, rng.integers(-128, 128, size=(count, *shape[1:]), dtype=np.int8))
    return path


@pytest.mark.parametrize("kernels", ["reference", "cmsis_nn"])
def test_digits_runs_bit_exact_on_tflm(tflm_projects, kernels, no_qemu_left):
    project = tflm_projects.get("digits", kernels=kernels)
    meta = json.loads((project / "project.json").read_text())
    assert meta["runtime"] == "tflm" and meta["kernels"] == kernels
    result = run(project, str(DIGITS_DIR / "eval.npz"), limit=60)
    assert result.samples == 60 and result.exact == 1.0
    assert result.accuracy_device == result.accuracy_reference > 0.9
    # release_with_logs keeps TFLM's profiler hooks: each operator is timed, and the
    # operators together take most of an inference.
    assert [o.op for o in result.per_op] == meta["op_names"]
    assert all(o.mean > 0 for o in result.per_op)
    assert 0.9 * result.latency_mean < sum(o.mean for o in result.per_op) <= result.latency_mean


def test_kws_runs_bit_exact_and_cmsis_nn_is_faster(tflm_projects, tmp_path, no_qemu_left):
    mean = {}
    for kernels in ("reference", "cmsis_nn"):
        project = tflm_projects.get("kws", kernels=kernels)
        result = run(project, _int8_samples(tmp_path / "kws.npy", project, 3))
        assert result.exact == 1.0, kernels
        mean[kernels] = result.latency_mean
    assert mean["cmsis_nn"] < mean["reference"]


TFLM_MODELS = SHARED_MODELS.parent / "tflm"


def _float_inputs(path: Path, project: Path, count: int, int32_values: dict[int, list[int]] | None = None) -> Path:
    """A .npz with x0, x1, ...: float samples for the quantized inputs, given values for int32 ones."""
    rng = np.random.default_rng(9)
    arrays = {}
    for k, t in enumerate(json.loads((project / "project.json").read_text())["inputs"]):
        if t["dtype"] == "int32":
            arrays[f"x{k}"] = np.tile(np.asarray(int32_values[k], dtype=np.int32), (count, 1))
        else:
            spread = t["scale"] * (np.iinfo(t["dtype"]).max - np.iinfo(t["dtype"]).min) / 2
            arrays[f"x{k}"] = rng.uniform(-spread, spread, size=(count, *t["shape"][1:])).astype(np.float32)
    np.savez(path, **arrays)
    return path


# TFLM's own models with several inputs and 16-bit activations (int16x8; the SEANet operator
# models), a two-input int8 one, and its LSTM, whose state must start afresh for each sample:
# the native runtime refuses the int16 ones whose operators have no 16x8 kernel, TFLM runs them all.
SEVERAL_INPUTS_AND_INT16 = {
    "simple_add": (TFLM_MODELS / "simple_add_model.tflite", None),
    "trained_lstm": (TFLM_MODELS / "trained_lstm_int8.tflite", None),
    "seanet_add": (TFLM_MODELS / "seanet/add/add0.tflite", None),
    "seanet_conv": (TFLM_MODELS / "seanet/conv/conv0.tflite", None),
    "seanet_transpose_conv": (TFLM_MODELS / "seanet/transpose_conv/transpose_conv0.tflite", {0: [1, 3, 12, 64]}),
}


@pytest.mark.parametrize("kernels", ["reference", "cmsis_nn"])
@pytest.mark.parametrize("name", sorted(SEVERAL_INPUTS_AND_INT16))
def test_several_inputs_and_int16x8_models_run_bit_exact_on_tflm(tflm_projects, name, kernels, tmp_path,
                                                                 no_qemu_left):
    model, int32_values = SEVERAL_INPUTS_AND_INT16[name]
    tflm_projects.models[name] = model
    project = tflm_projects.get(name, kernels=kernels)
    meta = json.loads((project / "project.json").read_text())
    assert len(meta["inputs"]) == (1 if name in ("seanet_conv", "trained_lstm") else 2)
    assert meta["outputs"][0]["dtype"] == ("int8" if name in ("simple_add", "trained_lstm") else "int16")
    result = run(project, _float_inputs(tmp_path / "x.npz", project, 3, int32_values),
                 save_outputs=tmp_path / "y.npy")
    assert result.samples == 3 and result.exact == 1.0
    saved = np.load(tmp_path / "y.npy")
    assert saved.dtype == meta["outputs"][0]["dtype"] and saved.shape[1:] == tuple(meta["outputs"][0]["shape"][1:])
    assert len(np.unique(saved)) > 1  # the inputs reached the model: not a constant output


def test_native_runtime_refuses_int16x8_pointing_at_tflm(tmp_path):
    """An int16x8 operator without a native 16x8 kernel (SUM) is refused by name, pointing at TFLM."""
    import tensorflow as tf

    from harness import convert_int16x8

    model = tmp_path / "sum16.tflite"
    model.write_bytes(convert_int16x8(lambda x: tf.reduce_sum(x, axis=1, keepdims=True), [(4, 4, 2)]))
    with pytest.raises(UserError, match=r"SUM \(node 0\) has int16 tensor .*; supported: int16 activations \(an int16x8 "
                                        r"model\) on ADD, .*; --runtime tflm"):
        generate(model, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def _nm(path: Path, *flags: str) -> list[tuple[str, int, str, int]]:
    """(name, size, type, address) of the sized symbols binutils' nm lists."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", *flags, str(path)], capture_output=True, text=True,
                         check=True).stdout
    return [(p[3], int(p[1], 16), p[2], int(p[0], 16))
            for p in (line.split() for line in out.splitlines()) if len(p) == 4]


def test_build_reports_the_tflm_arena_weights_and_library_code(tflm_projects):
    project = tflm_projects.get("kws", kernels="cmsis_nn")
    result = build(project, tflm_dir=tflm_projects.tflm_dir)  # up to date: measures again
    elf = project / "build" / "firmware.elf"
    linked = {name: (size, kind) for name, size, kind, _ in _nm(elf)}
    settings = (project / "model" / "model_settings.h").read_text()
    assert result.arena_bytes == linked["model_arena"][0] > 0
    assert f"= {result.arena_bytes}" in settings or str(result.arena_bytes) in settings
    assert result.flash_split["weights"] == linked["g_kws_ref_model_int8_model_data"][0] == KWS.stat().st_size
    # TFLM library code: the functions of libtensorflow-microlite.a that survived --gc-sections
    # (the link map counts their sections, which may end in a few bytes of padding).
    library = Path(re.search(r"(\S+libtensorflow-microlite\.a)\(", (project / "build" / "firmware.map")
                             .read_text()).group(1))
    in_library = {name for name, _, kind, _ in _nm(library, "--defined-only") if kind in "tTwW"}
    # Kernels' local functions share mangled names (tflite::(anonymous)::Eval, ...) and one function
    # may carry two names (C1/C2 constructors): count each linked address once.
    kept = list({address: size for name, size, kind, address in _nm(elf)
                 if kind in "tTwW" and name in in_library}.values())
    assert sum(kept) > 20_000
    assert sum(kept) <= result.runtime_code["tflm"] <= sum(kept) + 3 * len(kept)
    split = result.flash_split
    assert split["runtime_code"] == sum(result.runtime_code.values())
    assert split["weights"] + split["runtime_code"] + split["other"] == result.flash_bytes
    assert "TFLM library" in result.summary()


def test_changing_a_tflm_option_links_the_matching_library(tflm_projects, tmp_path, no_qemu_left):
    """A project built with CMSIS-NN, then with OPTIMIZED_KERNEL_DIR= (reference): the second link
    uses the reference library, not the stale one, and still runs bit-exact."""
    project = tmp_path / "switch"
    shutil.copytree(tflm_projects.get("digits", kernels="cmsis_nn"), project)

    def linked_library() -> str:
        return re.search(r"/tflm/([^/]+)/lib/libtensorflow-microlite\.a",
                         (project / "build" / "firmware.map").read_text()).group(1)

    assert linked_library().startswith("cortex-m4+fp_cmsis_nn_")
    cmsis_elf = (project / "build" / "firmware.elf").read_bytes()
    build(project, tflm_dir=tflm_projects.tflm_dir, make_args=["OPTIMIZED_KERNEL_DIR="])
    assert linked_library().startswith("cortex-m4+fp_reference_")
    assert (project / "build" / "firmware.elf").read_bytes() != cmsis_elf
    assert run(project, str(DIGITS_DIR / "eval.npz"), limit=10).exact == 1.0


def test_a_second_project_reuses_the_cached_library(tflm_projects, tmp_path):
    first = tflm_projects.get("kws", kernels="reference")
    library = Path(re.search(r"(\S+libtensorflow-microlite\.a)\(",
                             (first / "build" / "firmware.map").read_text()).group(1))
    before = library.stat().st_mtime_ns
    second = tmp_path / "again"
    generate(KWS, second, runtime="tflm", kernels="reference", name="kws_again")
    build(second, tflm_dir=tflm_projects.tflm_dir)
    assert str(library) in (second / "build" / "firmware.map").read_text()
    assert library.stat().st_mtime_ns == before, "the cached TFLM library was rebuilt"


def test_a_tflm_set_up_failure_is_shown_as_the_device_said_it(tflm_projects, tmp_path, capsys, no_qemu_left):
    """An arena too small: TFLM's own reason reaches the user, not a bare 'no reply'."""
    from tinyml_ptq.cli import main

    project = tmp_path / "small-arena"
    shutil.copytree(tflm_projects.get("kws", kernels="reference"), project, ignore=shutil.ignore_patterns("build"))
    settings = project / "model" / "model_settings.h"
    settings.write_text(re.sub(r"(ReferenceTensorArenaSize = )\d+;", r"\g<1>4096;", settings.read_text()))
    build(project, tflm_dir=tflm_projects.tflm_dir)
    data = _int8_samples(tmp_path / "x.npy", project, 1)
    assert main(["run", str(project), "--data", str(data), "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    # TFLM's own first complaint, quoted ("Failed to resize buffer. Requested: ..., available ...").
    assert re.search(r"the device printed 'tinyml-ptq TFLM set-up failed: AllocateTensors\(\) failed: "
                     r"Failed to [a-z ]+\. Requested: \d+, available \d+", err), err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_tflm_options_are_refused_clearly(tmp_path, capsys):
    from tinyml_ptq.cli import main

    model = str(SHARED_MODELS / "ad01_int8.tflite")
    assert main(["generate", model, "-o", str(tmp_path / "a"), "--runtime", "tflm", "--kernels", "dsp"]) == 2
    assert "'dsp' is a kernel set of the native runtime; the tflm runtime has: auto, reference, cmsis_nn" in \
        capsys.readouterr().err
    assert main(["generate", model, "-o", str(tmp_path / "b"), "--kernels", "cmsis_nn"]) == 2
    assert "'cmsis_nn' is a kernel set of the tflm runtime" in capsys.readouterr().err
    assert main(["generate", model, "-o", str(tmp_path / "c"), "--runtime", "tflm", "--board", "host",
                 "--kernels", "cmsis_nn"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_deploy_runtime_tflm_end_to_end(tflm_dir, digits_deployed, tmp_path, capsys):
    """deploy --runtime tflm on the digits example: quantize reused from the native deploy, the
    firmware built on TFLM + CMSIS-NN, every evaluation sample bit-exact, the report says so."""
    from tinyml_ptq.cli import main

    out = tmp_path / "digits"
    shutil.copytree(digits_deployed.out_dir, out)
    assert main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "-o", str(out), "--runtime", "tflm",
                 "--tflm-dir", str(tflm_dir)]) == 0
    summary = capsys.readouterr().out
    assert "runtime    TensorFlow Lite Micro, cmsis_nn kernels" in summary
    report = json.loads((out / "report.json").read_text())
    assert {s["name"]: s["cached"] for s in report["stages"]} == \
        {"quantize": True, "generate": False, "build": False, "run": False}
    assert report["generate"]["runtime"] == "tflm" and report["generate"]["kernels"] == "cmsis_nn"
    assert json.loads((out / "firmware" / "project.json").read_text())["runtime"] == "tflm"
    assert report["summary"]["runtime"] == "TensorFlow Lite Micro, cmsis_nn kernels"
    assert "<td>TensorFlow Lite Micro, cmsis_nn kernels</td>" in (out / "report.html").read_text()
    s = report["summary"]
    assert s["exact"] == 1.0 and s["samples"] == digits_deployed.report["summary"]["samples"]
    assert s["accuracy_device"] == s["accuracy_int8"] == digits_deployed.report["summary"]["accuracy_device"]
    assert report["build"]["runtime_code"]["tflm"] > 0 and s["arena_bytes"] > 0
    assert "--runtime tflm" in report["commands"]["deploy"] and "--tflm-dir" in report["commands"]["build"]
    # The recorded command, run again, reuses everything but the run.
    assert main(shlex.split(report["commands"]["deploy"])[1:]) == 0
    again = json.loads((out / "report.json").read_text())
    assert {s["name"]: s["cached"] for s in again["stages"]} == \
        {"quantize": True, "generate": True, "build": True, "run": False}


def test_deploy_int16x8_on_tflm_end_to_end(tflm_dir, tmp_path, capsys):
    """deploy --mode int16x8 --runtime tflm: the converter's 16-bit activation mode, the firmware on
    TFLM, every evaluation sample bit-exact; the report names the mode and who measured it. (TFLM's
    CMSIS-NN FULLY_CONNECTED refuses 16x8 per-channel weights at set-up: reference kernels.)"""
    from tinyml_ptq.cli import main

    out = tmp_path / "digits16"
    assert main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "--eval-samples", "120", "-o", str(out),
                 "--mode", "int16x8", "--runtime", "tflm", "--kernels", "reference", "--tflm-dir", str(tflm_dir)]) == 0
    assert re.search(r"int16x8 \d+\.\d+ % \(LiteRT\), device", capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    s = report["summary"]
    assert s["quantized"] == {"mode": "int16x8", "runtime": "litert"}
    assert s["exact"] == 1.0 and s["samples"] == 120 and s["accuracy_device"] > 0.9
    meta = json.loads((out / "firmware" / "project.json").read_text())
    assert meta["inputs"][0]["dtype"] == meta["outputs"][0]["dtype"] == "int16"
    assert "--mode int16x8" in report["commands"]["deploy"] and "--mode int16x8" in report["commands"]["quantize"]
    assert (out / "digits_cnn_int16x8.tflite").is_file()


def test_deploy_int16x8_runs_natively(tmp_path):
    """The digits model's 16x8 operators all have native int16x8 kernels: deployed without TFLM."""
    from tinyml_ptq.pipeline.deploy import deploy

    result = deploy(DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), str(DIGITS_DIR / "eval.npz"),
                    tmp_path / "d", mode="int16x8", eval_samples=60)
    assert result.report["summary"]["exact"] == 1.0 and result.report["summary"]["quantized"]["mode"] == "int16x8"
    assert result.report["summary"]["runtime"].startswith("tinyml-ptq native")
    meta = json.loads((tmp_path / "d" / "firmware" / "project.json").read_text())
    assert meta["inputs"][0]["dtype"] == meta["outputs"][0]["dtype"] == "int16"


@pytest.mark.heavy  # TFLM built with the host compiler
def test_host_board_runs_tflm_natively(tflm_projects):
    """The TFLM route on the host board: TFLM built with the host compiler, the protocol on stdio."""
    project = tflm_projects.get("digits", board="host")
    result = run(project, str(DIGITS_DIR / "eval.npz"), limit=30)
    assert result.exact == 1.0 and result.latency_unit == "ns"
