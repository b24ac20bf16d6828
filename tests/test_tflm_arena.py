"""The TFLM tensor arena: the derived k<Name>TensorArenaSize against what TFLM needs on the device.

TFLM's need is measured, not taken from arena_used_bytes() (which leaves out what Prepare()
and the memory planner borrow): the project built with TFLM_MEASURE_ARENA=1 bisects at boot,
under QEMU (mps2-an386, Cortex-M4F), for the smallest arena AllocateTensors() succeeds in.
The derivation must cover it and stay within 15 % of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyml_ptq.compiler.tflm_export import export_tflm_project
from tinyml_ptq.device.arena_measure import MEASURE_BUILD, measure_tflm_arena

from conftest import SHARED_MODELS, our_qemus

BOARD = "mps2-an386"
CASES = [("digits", "reference"), ("digits", "cmsis_nn"), ("kws_ref_model_int8", "reference"),
         ("kws_ref_model_int8", "cmsis_nn"), ("ad01_int8", "reference")]


class ArenaProjects:
    """(model, kernels) -> (project, derived arena, measured need), generated and measured once."""

    def __init__(self, root: Path, tflm_dir: Path, request):
        self.root, self.tflm_dir, self.request = root, tflm_dir, request
        self.measured: dict[tuple[str, str], tuple[Path, int, int]] = {}

    def model(self, name: str) -> Path:
        if name == "digits":
            return self.request.getfixturevalue("digits_int8_tflite")
        return SHARED_MODELS / f"{name}.tflite"

    def get(self, model: str, kernels: str) -> tuple[Path, int, int]:
        key = (model, kernels)
        if key not in self.measured:
            project = self.root / f"{model}-{kernels}"
            derived = export_tflm_project(self.model(model), project, board=BOARD, kernels=kernels).arena_bytes
            self.measured[key] = project, derived, measure_tflm_arena(project, self.tflm_dir)
        return self.measured[key]


@pytest.fixture(scope="session")
def arena_projects(tmp_path_factory, tflm_dir, request) -> ArenaProjects:
    return ArenaProjects(tmp_path_factory.mktemp("tflm-arena"), tflm_dir, request)


@pytest.mark.slow
@pytest.mark.parametrize("model,kernels", CASES)
def test_derived_arena_covers_the_measured_need_within_15_percent(arena_projects, model, kernels):
    _, derived, need = arena_projects.get(model, kernels)
    assert need <= derived <= 1.15 * need, f"{model} {kernels}: derived {derived} B, TFLM needs {need} B"


@pytest.mark.slow
def test_measurement_builds_apart_and_leaves_no_emulator(arena_projects):
    project, _, need = arena_projects.get("ad01_int8", "reference")
    assert need > 0
    assert (project / MEASURE_BUILD / "firmware.elf").is_file()
    assert not (project / "build").exists()  # the project's own build is untouched
    assert our_qemus(arena_projects.root) == []
