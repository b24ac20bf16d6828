"""Every build the user may ask for compiles each optimized kernel set correctly: the MLPerf Tiny
models with the DSP kernels on mps2-an386 (Cortex-M4), the Helium kernels on mps3-an547
(Cortex-M55) and the scalar kernels on mps2-an385 (Cortex-M3), at each optimization level, with
LTO, a frame pointer and r9 reserved, run bit-exact with the TFLM reference under QEMU."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.run import run
from tinyml_ptq.target.build import build

from conftest import SHARED_MODELS

MODELS = ["kws_ref_model_int8", "vww_96_int8", "resnet8_cifar10_int8", "ad01_int8"]
KERNEL_SETS = {"dsp": "mps2-an386", "helium": "mps3-an547", "scalar": "mps2-an385"}  # kernel set: its board
# The later sets run the two models that between them use each of their kernels (KWS: convolution,
# depthwise, fully connected, pooling; ResNet-8: ADD), to keep the suite inside its time budget.
MODELS_OF = {"dsp": MODELS, "helium": MODELS[0::2], "scalar": MODELS[0::2]}
FLAGS = {  # name: build options
    "O0": {"opt": "-O0"}, "Og": {"opt": "-Og"}, "Os": {"opt": "-Os"}, "O3": {"opt": "-O3"},
    "O2-lto": {"opt": "-O2", "lto": True},
    "O2-frame-pointer": {"opt": "-O2", "cflags": "-fno-omit-frame-pointer"},
    "O2-fixed-r9": {"opt": "-O2", "cflags": "-ffixed-r9"},
}
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="arm-none-eabi-gcc and qemu-system-arm are needed (make apt installs them)")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[tuple[str, str], tuple]:
    """Each model generated once per optimized kernel set (what auto picks on its board), with two
    random int8 samples."""
    root = tmp_path_factory.mktemp("flags")
    projects = {}
    for kernels, board in KERNEL_SETS.items():
        for name in MODELS_OF[kernels]:
            model = SHARED_MODELS / f"{name}.tflite"
            project = root / f"{name}-{kernels}"
            result = generate(model, project, board=board)
            assert result.kernels == kernels
            shape = json.loads((project / "project.json").read_text())["inputs"][0]["shape"][1:]
            data = root / f"{name}.npy"
            np.save(data, np.random.default_rng(1).integers(-128, 128, size=(2, *shape), dtype=np.int8))
            projects[name, kernels] = (project, data)
    return projects


@needs_arm
@pytest.mark.slow
@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("kernels, model", [(k, m) for k in KERNEL_SETS for m in MODELS_OF[k]])
def test_model_runs_bit_exact_with_these_build_flags(generated, kernels, model, flags, tmp_path):
    project, data = generated[model, kernels]
    copy = tmp_path / model
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build"))
    build(copy, **FLAGS[flags])
    result = run(copy, data)
    assert result.exact == 1.0 and result.samples == 2


@needs_arm
def test_the_assembly_pair_loop_saves_what_the_caller_may_reserve(generated, tmp_path):
    """The row-pair loop is a function with its own prologue: it saves r4-r11 (r7, the frame
    pointer, and r9, the static base, among them) and restores them, whatever the flags."""
    project, _ = generated["kws_ref_model_int8", "dsp"]
    copy = tmp_path / "kws"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build"))
    build(copy, cflags="-ffixed-r9")
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", "-M", "reg-names-std", "--no-show-raw-insn",
                              str(copy / "build" / "firmware.elf")], capture_output=True, text=True, check=True).stdout
    body = listing.split("<tp_dsp_pairs>:", 1)[1].split("\n\n", 1)[0]
    lines = [" ".join(line.split("\t")[1:]).strip() for line in body.splitlines() if "\t" in line]
    saved = "r4, r5, r6, r7, r8, r9, r10, r11"
    assert re.fullmatch(rf"(push(\.w)?|stmdb(\.w)?\s+sp!,)\s+\{{{saved}, lr\}}", lines[0]), lines[0]
    assert re.fullmatch(rf"(pop(\.w)?|ldmia(\.w)?\s+sp!,)\s+\{{{saved}, pc\}}", lines[-1]), lines[-1]


def test_bad_build_options_are_refused(tmp_path):
    from tinyml_ptq.target.build import compiler_options

    assert compiler_options("-Os", True, "-fno-omit-frame-pointer -g3") == \
        ["OPT=-Os", "LTO=1", "EXTRA_CFLAGS=-fno-omit-frame-pointer -g3"]
    with pytest.raises(UserError, match="unknown optimization level '-O9'"):
        compiler_options("-O9", False, None)
    with pytest.raises(UserError, match="holds a quote"):
        compiler_options(None, False, "-DX='$(rm -rf ~)'")
