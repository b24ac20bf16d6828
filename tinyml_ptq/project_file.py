"""project.json: what `generate` wrote into a firmware project, for `build`, `run`, `flash`,
`emulate` and the TFLM arena measurement to read back. One writer and one reader, versioned:
a project written by a newer tinyml-ptq is refused instead of being misread.

Version 1 is the format as it stood when versions began; a project.json without
schema_version is of that format.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError

PROJECT_FILE = "project.json"
SCHEMA_VERSION = 1


def project_json(metadata: dict) -> str:
    """The text of project.json for `metadata` (schema_version first)."""
    return json.dumps({"schema_version": SCHEMA_VERSION, **metadata}, indent=2) + "\n"


def read_project(project: Path) -> dict:
    """The metadata of the firmware project folder `project`, or one error line saying what is wrong."""
    marker = project / PROJECT_FILE
    if not project.is_dir():
        raise UserError(f"{project}: no such folder; give a folder made by 'tinyml-ptq generate'")
    if not marker.is_file():
        raise UserError(f"{project} is not a tinyml-ptq firmware project (no {PROJECT_FILE}); "
                        "make one with 'tinyml-ptq generate MODEL.tflite -o DIR'")
    try:
        metadata = json.loads(marker.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{marker} is corrupt; generate the project again") from None
    if not isinstance(metadata, dict):
        raise UserError(f"{marker} is corrupt; generate the project again")
    version = metadata.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(f"{marker} has schema version {version!r}, newer than this tinyml-ptq reads "
                        f"({SCHEMA_VERSION}); upgrade tinyml-ptq or generate the project again")
    return metadata
