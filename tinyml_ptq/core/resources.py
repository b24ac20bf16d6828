"""Where the toolkit's non-Python files live: C runtime, board support, templates."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
TEMPLATES_DIR = ROOT / "templates"
