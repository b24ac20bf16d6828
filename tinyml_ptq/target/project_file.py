"""The firmware project folder as later stages read it: project.json, which `generate` writes
for `build`, `run`, `flash`, `emulate` and the TFLM arena measurement (written and read
through json_files, versioned), and the copy of the model beside it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from ..core import json_files
from ..core.errors import UserError

PROJECT_FILE = "project.json"
# A copy of the .tflite the project was generated from: `run` checks every output against
# it, from any working folder and after the original has moved.
REFERENCE_MODEL = "model.tflite"


def project_json(metadata: dict) -> str:
    """The text of project.json for `metadata` (schema_version first)."""
    return json_files.dumps("project", metadata)


def read_project(project: Path) -> dict:
    """The metadata of the firmware project folder `project`, or one error line saying what is wrong."""
    if not project.is_dir():
        raise UserError(f"{project}: no such folder; give a folder made by 'tinyml-ptq generate'")
    try:
        return json_files.read(project / PROJECT_FILE, "project", "generate the project again")
    except FileNotFoundError:
        raise UserError(f"{project} is not a tinyml-ptq firmware project (no {PROJECT_FILE}); "
                        "make one with 'tinyml-ptq generate MODEL.tflite -o DIR'") from None


def model_digest(tflite_bytes: bytes) -> int:
    """CRC-32 of the .tflite: the firmware reports it in INFO, so `run` knows which model it serves."""
    return zlib.crc32(tflite_bytes) & 0xFFFFFFFF
