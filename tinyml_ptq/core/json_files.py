"""The JSON files the toolkit writes, each in one place with a schema version, and read back
through one reader that refuses a version newer than this toolkit knows instead of misreading it.

Version 1 of each is its format as it stood when versions began; a file without
schema_version is of that version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import UserError
from .fileio import write_text_atomic

# kind: (what it is, for messages; its current version)
KINDS = {
    "project": ("firmware project description", 1),  # DIR/project.json, by generate
    "quantize_report": ("quantize report", 1),  # quantize --report
    "build": ("build result", 1),  # build --json
    "run": ("run result", 1),  # run --json
    "verify": ("verify result", 1),  # verify --json
    "report": ("report", 1),  # deploy's report.json, read by check
    "manifest": ("deploy manifest", 1),  # deploy's manifest.json, read by deploy for reuse
}


def dumps(kind: str, data: dict) -> str:
    """The file's text: schema_version first, then `data`."""
    return json.dumps({"schema_version": KINDS[kind][1], **data}, indent=2) + "\n"


def write(path: str | os.PathLike, kind: str, data: dict) -> None:
    """Write `data` as a `kind` file at `path`, atomically."""
    write_text_atomic(path, dumps(kind, data))


def read(path: str | os.PathLike, kind: str, remedy: str) -> dict:
    """The object in the `kind` file at `path`. A missing file raises FileNotFoundError for the
    caller to explain; an unreadable one, or one of a newer version, is one error line ending
    with `remedy`."""
    what, version = KINDS[kind]
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a readable JSON {what} ({type(exc).__name__}); {remedy}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a readable JSON {what} (not an object); {remedy}")
    found = data.get("schema_version", 1)
    if not isinstance(found, int) or isinstance(found, bool) or found > version:
        raise UserError(f"{path} has schema version {found!r}, newer than this tinyml-ptq reads ({version}); "
                        f"upgrade tinyml-ptq, or {remedy}")
    data.pop("schema_version", None)
    return data
