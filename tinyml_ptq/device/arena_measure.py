"""The TensorFlow Lite Micro tensor arena of a model, measured on the device (tflm_arena.py
derives it): the project is built with TFLM_MEASURE_ARENA=1, whose firmware bisects for the
smallest arena AllocateTensors() accepts and reports it in the protocol's INFO reply.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import UserError
from ..target.boards import project_board
from ..target.build import build
from ..target.project_file import read_project
from .emulator import EMULATOR_SILENT_RETRIES, emulator_for
from .protocol import DeviceClient

MEASURE_BUILD = "build-arena"  # the measuring firmware's build folder, apart from build/


def measure_tflm_arena(project_dir: str | os.PathLike, tflm_dir: str | os.PathLike | None = None) -> int:
    """The smallest arena TFLM's AllocateTensors() succeeds in, measured on the device.

    Builds the TFLM project with TFLM_MEASURE_ARENA=1 into `project_dir`/build-arena
    (its build/ is left alone), boots that firmware in the board's emulator, and reads
    the bytes from the INFO reply. tflm_dir: the TFLM source tree (else $TFLM_DIR).
    """
    project = Path(project_dir)
    meta = read_project(project)
    if meta.get("runtime") != "tflm":
        raise UserError(f"{project} is not a TensorFlow Lite Micro project; generate one with --runtime tflm")
    board = project_board(meta)
    build(project, make_args=["TFLM_MEASURE_ARENA=1", f"BUILD={MEASURE_BUILD}"], tflm_dir=tflm_dir)
    with emulator_for(board, project / MEASURE_BUILD / "firmware.elf") as emulator:
        transport = emulator.transport()
        try:
            return DeviceClient(transport, silent_retries=EMULATOR_SILENT_RETRIES).info().arena_bytes
        finally:
            transport.close()
