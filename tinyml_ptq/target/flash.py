"""Flash a built project onto a real board with pyOCD or OpenOCD.

Only boards without an emulator need this (QEMU boards run with `tinyml-ptq run`).
Each external command runs with a timeout, so a missing or wedged probe gives a
clear error instead of a hang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from .boards import project_board

# Debug-probe settings per board: pyOCD target name, OpenOCD config files.
PROBE_TARGETS = {
    "nucleo-l4r5zi": {"pyocd": "stm32l4r5zitx", "openocd": ["interface/stlink.cfg", "target/stm32l4x.cfg"]},
}
LIST_TIMEOUT = 30.0
FLASH_TIMEOUT = 180.0


@dataclass
class FlashResult:
    project_dir: str
    board: str
    probe: str
    target: str
    image: str
    output: str


def flash(project_dir: str | os.PathLike, probe: str = "pyocd", target: str | None = None) -> FlashResult:
    """Program DIR/build/firmware onto the attached board (pyocd or openocd)."""
    from .project_file import read_project

    project = Path(project_dir)
    meta = read_project(project)
    board = project_board(meta)
    if board.is_host or board.qemu_machine is not None:
        raise UserError(f"board {board.name} is not real hardware; run it with 'tinyml-ptq run {project}' "
                        f"or serve it with 'tinyml-ptq emulate {project}'")
    if probe not in ("pyocd", "openocd"):
        raise UserError(f"unknown probe tool '{probe}'; use pyocd or openocd")
    elf = project / "build" / "firmware.elf"
    hex_file = project / "build" / "firmware.hex"
    if not elf.is_file():
        raise UserError(f"{elf} not found; build the project first: tinyml-ptq build {project}")
    known = PROBE_TARGETS.get(board.name, {})
    if probe == "pyocd":
        target = target or known.get("pyocd")
        if not target:
            raise UserError(f"no pyOCD target known for {board.name}; pass --target (see 'pyocd list --targets')")
        exe = _need_tool("pyocd", "pip install pyocd")
        listing = _call([exe, "list", "--probes"], LIST_TIMEOUT, "pyocd list")
        if "No available debug probes" in listing or not any(line.strip()[:1].isdigit()
                                                              for line in listing.splitlines()):
            raise UserError(f"no debug probe found by pyocd; connect the board's USB (ST-LINK) and try again\n"
                            f"{listing.strip()}")
        image = hex_file if hex_file.is_file() else elf
        cmd = [exe, "flash", "--target", target, str(image)]
        out = _call(cmd, FLASH_TIMEOUT, "pyocd flash")
        return FlashResult(str(project), board.name, probe, target, str(image), out)
    configs = known.get("openocd")
    if target:
        configs = [c for c in target.split(",") if c]
    if not configs:
        raise UserError(f"no OpenOCD configuration known for {board.name}; pass --target "
                        "interface/X.cfg,target/Y.cfg")
    exe = _need_tool("openocd", "apt-get install openocd")
    cmd = [exe]
    for cfg in configs:
        cmd += ["-f", cfg]
    cmd += ["-c", f"program {elf} verify reset exit"]
    out = _call(cmd, FLASH_TIMEOUT, "openocd")
    return FlashResult(str(project), board.name, probe, ",".join(configs), str(elf), out)


def _need_tool(name: str, install: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise UserError(f"{name} not found; install it ({install}), or program DIR/build/firmware.hex "
                        "with your vendor's tool")
    return exe


def _call(cmd: list[str], timeout: float, what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} did not finish within {timeout:.0f} s (probe not responding?); "
                        "unplug and replug the board and try again") from None
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-8:])
        raise UserError(f"{what} failed (exit status {proc.returncode}); is a probe attached?\n{tail}")
    return output
