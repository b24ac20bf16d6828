"""The TFLM route on the Cortex-M55 (mps3-an547) with CMSIS-NN: KWS bit-exact under QEMU, CMSIS-NN
built for Helium (its kernels in the ELF hold MVE vector instructions), and the derived arena
covering what TFLM needs with the MVE kernels' scratch buffers.

The TFLM library (minutes to build) is cached by the toolkit per tree and configuration, as for
tests/test_tflm_route.py, so later sessions reuse it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.compiler.project import generate
from tinyml_ptq.device.arena_measure import measure_tflm_arena
from tinyml_ptq.device.run import run
from tinyml_ptq.target.build import build

from conftest import SHARED_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # TFLM + CMSIS-NN built for the M55

KWS = SHARED_MODELS / "kws_ref_model_int8.tflite"
BOARD = "mps3-an547"
# The CMSIS-NN inner loops KWS runs through: the convolutions' matrix product, the depthwise
# kernel's and the fully-connected layer's; each has an MVE (ARM_MATH_MVEI) body.
HELIUM_FUNCTIONS = ("arm_nn_mat_mult_nt_t_s8", "arm_nn_depthwise_conv_nt_t_s8", "arm_nn_vec_mat_mult_t_s8")
# Loads of Q registers (VLDRB/H/W, predicated or not) and integer vector multiplies (across-vector
# VMLADAV/VMLAVA..., lane-wise VMUL.I32): MVE only, neither the FPU nor the DSP extension has them.
VECTOR_LOAD = re.compile(r"vldr[bhw]t?\.[su]?\d+$")
VECTOR_MULTIPLY = re.compile(r"vml[as]l?dav|vmlav|vmul\.i32$")


@pytest.fixture(scope="module")
def kws_cmsis_nn(tmp_path_factory, tflm_dir) -> Path:
    if shutil.which("arm-none-eabi-objdump") is None:
        pytest.skip("arm-none-eabi-objdump is needed (make apt installs binutils-arm-none-eabi)")
    project = tmp_path_factory.mktemp("tflm-m55") / "kws-cmsis_nn"
    generate(KWS, project, board=BOARD, runtime="tflm", kernels="cmsis_nn")
    build(project, tflm_dir=tflm_dir)
    return project


def mnemonics(elf: Path, function: str) -> list[str]:
    """The instruction mnemonics of one function. objdump is told the architecture: from the
    ELF's attributes alone it decodes MVE instructions as coprocessor ones (LDC, CDP)."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main", f"--disassemble={function}", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    return [fields[2].split()[0] for fields in (line.split("\t") for line in out.splitlines()) if len(fields) >= 3]


def test_kws_runs_exact_on_the_m55_with_cmsis_nn(kws_cmsis_nn, tmp_path):
    meta = json.loads((kws_cmsis_nn / "project.json").read_text())
    assert (meta["runtime"], meta["kernels"], meta["tflm_target_arch"]) == ("tflm", "cmsis_nn", "cortex-m55")
    data = tmp_path / "kws.npy"
    np.save(data, np.random.default_rng(11).integers(-128, 128, size=(3, 49, 10, 1), dtype=np.int8))
    result = run(kws_cmsis_nn, data)
    assert result.samples == 3 and result.exact == 1.0
    assert [o.op for o in result.per_op] == meta["op_names"]


def test_cmsis_nn_in_the_elf_runs_helium(kws_cmsis_nn):
    elf = kws_cmsis_nn / "build" / "firmware.elf"
    for function in HELIUM_FUNCTIONS:
        ops = mnemonics(elf, function)
        assert ops, f"{function} is not in the ELF"
        assert any(VECTOR_LOAD.match(op) for op in ops), f"{function}: no MVE vector load in {sorted(set(ops))}"
        assert any(VECTOR_MULTIPLY.match(op) for op in ops), f"{function}: no MVE multiply in {sorted(set(ops))}"


def test_derived_arena_covers_what_tflm_needs_with_helium_kernels(kws_cmsis_nn, tflm_dir):
    """CMSIS-NN asks for other scratch with MVE (the depthwise kernel's 4 x 124-channel im2col,
    the fully-connected filter sums): the derivation must cover the measured need, within 15 %."""
    derived = json.loads((kws_cmsis_nn / "project.json").read_text())["arena_bytes"]
    need = measure_tflm_arena(kws_cmsis_nn, tflm_dir)
    assert need <= derived <= 1.15 * need, f"derived {derived} B, TFLM needs {need} B"
