"""The build stage: `make` a generated project and measure what the firmware needs.

Flash and RAM are read from the ELF section headers (parsed here, no
binutils needed): flash = code + read-only data + the initial values of
.data, RAM = .data + .bss (the model arena lives there) + the stack. They are
checked against the board's capacity; a model that does not fit is a
UserError saying by how much.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core import json_files
from ..core.errors import UserError
from ..core.fileio import check_writable
from ..core.progress import log
from .boards import OPT_LEVELS, Board, format_size, memory_shortfall, more_memory_hint, project_board
from .project_file import read_project

SHT_SYMTAB = 2
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
ARENA_SYMBOL = "model_arena"
STACK_SECTION = ".stack"
EXTERNAL_WEIGHTS_SECTION = ".tp_external_weights"  # board linker scripts: external_weights.ld


@dataclass
class Section:
    name: str
    address: int
    size: int
    kind: str  # text, rodata, data, bss, stack, external


@dataclass
class BuildResult:
    project_dir: str
    board: str
    elf: str
    bin: str | None
    hex: str | None
    flash_bytes: int  # text + rodata + data (initial values)
    ram_bytes: int  # data + bss + stack
    arena_bytes: int
    stack_bytes: int
    text_bytes: int
    rodata_bytes: int
    data_bytes: int
    bss_bytes: int
    flash_capacity: int | None
    ram_capacity: int | None
    sections: list[Section] = field(default_factory=list)
    # Flash by what it holds (None without a link map): {"weights", "runtime_code", "other"}
    # and runtime code by part: {"kernels", "app", "board"}, or {"tflm", "app", "board"} for
    # a TensorFlow Lite Micro project.
    flash_split: dict[str, int] | None = None
    runtime_code: dict[str, int] | None = None
    # Weights in the board's external memory (generate --weights-memory external), not in flash.
    external_bytes: int = 0
    external_capacity: int | None = None

    @property
    def flash_percent(self) -> float | None:
        return None if not self.flash_capacity else 100.0 * self.flash_bytes / self.flash_capacity

    @property
    def ram_percent(self) -> float | None:
        return None if not self.ram_capacity else 100.0 * self.ram_bytes / self.ram_capacity

    @property
    def external_percent(self) -> float | None:
        return None if not self.external_capacity else 100.0 * self.external_bytes / self.external_capacity

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flash_percent"] = None if self.flash_percent is None else round(self.flash_percent, 2)
        data["ram_percent"] = None if self.ram_percent is None else round(self.ram_percent, 2)
        return data

    def summary(self) -> str:
        def usage(used: int, cap: int | None, pct: float | None) -> str:
            if cap is None:
                return f"{used} bytes"
            return f"{used} bytes of {format_size(cap)} ({pct:.1f}%)"

        lines = [
            f"built {self.elf}" + (" (+ .bin, .hex)" if self.bin else ""),
            f"board  {self.board}",
            f"flash  {usage(self.flash_bytes, self.flash_capacity, self.flash_percent)}: "
            f"text {self.text_bytes}, rodata {self.rodata_bytes}, data {self.data_bytes}",
            f"RAM    {usage(self.ram_bytes, self.ram_capacity, self.ram_percent)}: "
            f"data {self.data_bytes}, bss {self.bss_bytes} (arena {self.arena_bytes}), stack {self.stack_bytes}",
        ]
        if self.external_bytes:
            lines.append(f"external {usage(self.external_bytes, self.external_capacity, self.external_percent)}: "
                         "the weights")
        if self.flash_split is not None:
            code = self.runtime_code
            parts = ", ".join(f"{'TFLM library' if part == 'tflm' else part} {n}" for part, n in code.items())
            lines.append(f"split  weights {self.flash_split['weights']}, runtime code {self.flash_split['runtime_code']} "
                         f"({parts}), other {self.flash_split['other']}")
        return "\n".join(lines)


def build(project_dir: str | os.PathLike, json_out: str | os.PathLike | None = None,
          jobs: int | None = None, make_args: list[str] | None = None,
          tflm_dir: str | os.PathLike | None = None, *, opt: str | None = None, lto: bool = False,
          cflags: str | None = None) -> BuildResult:
    """Run `make` in a generated project; measure and check the firmware it produced.

    A TensorFlow Lite Micro project (`generate --runtime tflm`) needs the user's TFLM
    source tree: `tflm_dir`, or the TFLM_DIR environment variable. opt: the optimization
    flag (-O2 by default: -O0, -Og, -O1, -O2, -O3, -Os, -Oz); lto: link-time optimization;
    cflags: more compiler flags, e.g. "-fno-omit-frame-pointer" (the project's own sources;
    a TFLM library keeps TFLM's flags).
    """
    project = Path(project_dir)
    check_writable(json_out, "--json")
    meta = read_project(project)
    board = project_board(meta)
    _check_tools(board, tflm=meta.get("runtime") == "tflm")
    make_args = [*(make_args or []), *compiler_options(opt, lto, cflags)]
    if meta.get("runtime") == "tflm":
        make_args = tflm_make_args(meta, board, find_tflm_dir(tflm_dir, project), make_args, project)
    cmd = ["make", "-C", str(project), f"-j{jobs or min(os.cpu_count() or 1, 8)}", *make_args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        _raise_overflow(output, board, meta)
        if "cstddef: No such file" in output or "cstdint: No such file" in output:
            raise UserError("the C++ standard library for arm-none-eabi is missing; install it "
                            "(apt-get install libstdc++-arm-none-eabi-newlib)")
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise UserError(f"build of {project} failed (make exit status {proc.returncode}):\n{tail}")

    build_dir = project / _build_subdir(make_args)
    elf = build_dir / "firmware.elf"
    result = measure(elf, board, project)
    _check_capacity(result, board, meta)
    if json_out is not None:
        json_files.write(json_out, "build", result.to_dict())
    return result


def compiler_options(opt: str | None, lto: bool, cflags: str | None) -> list[str]:
    """make arguments for the optimization level, LTO and extra compiler flags."""
    args = []
    if opt is not None:
        if opt not in OPT_LEVELS:
            raise UserError(f"unknown optimization level '{opt}'; choose one of: {', '.join(OPT_LEVELS)}")
        args.append(f"OPT={opt}")
    if lto:
        args.append("LTO=1")
    if cflags:
        if any(c in cflags for c in "\n'\"$`\\"):
            raise UserError(f"--cflags '{cflags}' holds a quote, $, backquote, backslash or newline; "
                            "give plain compiler flags")
        args.append(f"EXTRA_CFLAGS={cflags}")
    return args


def find_tflm_dir(tflm_dir: str | os.PathLike | None, project: Path | None = None) -> Path:
    """The TFLM source tree: the option, else $TFLM_DIR; UserError if neither names one."""
    tflm_dir = tflm_dir or os.environ.get("TFLM_DIR")
    if not tflm_dir:
        what = f"{project} is a TensorFlow Lite Micro project" if project else "the TFLM route needs a TFLM tree"
        raise UserError(f"{what}; give --tflm-dir DIR (a TFLM source tree with its third-party downloads) "
                        "or set TFLM_DIR")
    if not Path(tflm_dir, "tensorflow", "lite", "micro", "tools", "make", "Makefile").is_file():
        raise UserError(f"{tflm_dir} is not a TFLM source tree (no tensorflow/lite/micro/tools/make/Makefile inside)")
    return Path(tflm_dir).resolve()


def cache_dir() -> Path:
    """Where built artefacts shared between projects live: $TINYML_PTQ_CACHE, else ~/.cache/tinyml-ptq."""
    explicit = os.environ.get("TINYML_PTQ_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyml-ptq"


def tflm_make_args(meta: dict, board: Board, tflm_dir: Path, make_args: list[str],
                   project: Path | None = None) -> list[str]:
    """make arguments for a TFLM project: the tree, this Python for TFLM's scripts, and the
    library's folder in the cache.

    The TFLM library takes minutes to build, so it is built once per TFLM tree, core, kernel
    set, build type, compiler and extra make arguments (the key of its cache folder) and
    shared by every project; TFLM's own make keeps it up to date with the tree's sources.
    """
    overrides = dict(a.split("=", 1) for a in make_args if "=" in a)
    missing = [k for k in ("kernels", "tflm_build_type", "tflm_target_arch") if k not in meta]
    if missing:  # a project from an earlier tinyml-ptq
        raise UserError(f"the TFLM project's project.json lacks {', '.join(missing)}: it was generated by an earlier "
                        "tinyml-ptq; generate it again")
    kernels = overrides.get("OPTIMIZED_KERNEL_DIR", "" if meta["kernels"] == "reference" else meta["kernels"])
    build_type = overrides.get("TFLM_BUILD_TYPE", meta["tflm_build_type"])
    arch = overrides.get("TFLM_TARGET_ARCH", meta["tflm_target_arch"])
    settings = {"tflm": str(tflm_dir), "arch": arch, "kernels": kernels, "build_type": build_type,
                "compiler": _compiler_identity(board), "extra": overrides.get("TFLM_MAKE_EXTRA", "")}
    if "tflm_makefile" in meta and project is not None:  # an MVE core's per-object flags (tflm_mve.mk)
        settings["makefile"] = (project / meta["tflm_makefile"]).read_text()
    key = json.dumps(settings, sort_keys=True)
    name = f"{arch or 'host'}_{kernels or 'reference'}_{build_type}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    gendir = cache_dir() / "tflm" / name
    if not (gendir / "lib" / "libtensorflow-microlite.a").is_file():
        log(f"building TensorFlow Lite Micro ({arch or 'host'}, {kernels or 'reference'} kernels, {build_type}) "
            f"into {gendir}: minutes, once per TFLM tree and configuration")
    return [*make_args, f"TFLM_DIR={tflm_dir}", f"TFLM_PYTHON={sys.executable}", f"TFLM_GENDIR={gendir}/"]


def _compiler_identity(board: Board) -> str:
    compiler = "c++" if board.is_host else "arm-none-eabi-g++"
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return compiler
    return out.splitlines()[0] if out else compiler


def _build_subdir(make_args: list[str] | None) -> str:
    for arg in make_args or []:
        if arg.startswith("BUILD="):
            return arg.split("=", 1)[1]
    return "build"


def _check_tools(board: Board, tflm: bool) -> None:
    if shutil.which("make") is None:
        raise UserError("make not found; install it (apt-get install make)")
    compilers = ["cc", "c++"] if board.is_host else ["arm-none-eabi-gcc", "arm-none-eabi-g++"]
    for compiler in compilers[:2 if tflm else 1]:
        if shutil.which(compiler) is None:
            package = ("g++" if compiler == "c++" else "gcc") if board.is_host else \
                "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
            raise UserError(f"{compiler} not found; install it (apt-get install {package})")
    if tflm and shutil.which("flock") is None:
        raise UserError("flock not found; install it (apt-get install util-linux)")


_OVERFLOW = re.compile(r"region `?'?(\w+)'? overflowed by (\d+) bytes")


def _raise_overflow(output: str, board: Board, meta: dict) -> None:
    overflows = {region: int(n) for region, n in _OVERFLOW.findall(output)}
    if not overflows:
        return
    parts = []
    if "RAM" in overflows:
        parts.append(f"RAM by {overflows['RAM']} bytes (capacity {format_size(board.ram_bytes)}; "
                     f"the model's arena alone is {meta.get('arena_bytes', '?')} bytes)")
    if "FLASH" in overflows:
        parts.append(f"flash by {overflows['FLASH']} bytes (capacity {format_size(board.flash_bytes)}; "
                     f"the model's weights alone are {meta.get('weights_bytes', '?')} bytes)")
    if "EXTERNAL" in overflows:
        parts.append(f"external memory by {overflows['EXTERNAL']} bytes (capacity "
                     f"{format_size(board.external_bytes)}; the model's weights are {meta.get('weights_bytes', '?')} "
                     "bytes)")
    raise UserError(f"model does not fit on {board.name}: it exceeds {' and '.join(parts)}; "
                    f"{more_memory_hint(board, meta.get('weights_memory', 'internal'))}")


def _check_capacity(result: BuildResult, board: Board, meta: dict) -> None:
    over = memory_shortfall(board, result.flash_bytes, result.ram_bytes, result.external_bytes)
    if over:
        raise UserError(f"model does not fit on {board.name}: it exceeds {' and '.join(over)}; "
                        f"{more_memory_hint(board, meta.get('weights_memory', 'internal'))}")


def measure(elf: str | os.PathLike, board: Board, project: Path | None = None) -> BuildResult:
    """Flash/RAM/arena of a linked firmware image, from its ELF headers and symbol table."""
    elf = Path(elf)
    sections, symbols = read_elf(elf)
    kept: list[Section] = []
    for name, sh_type, flags, addr, size in sections:
        if not flags & SHF_ALLOC or size == 0:
            continue
        if name == STACK_SECTION:
            kind = "stack"
        elif name == EXTERNAL_WEIGHTS_SECTION:
            kind = "external"
        elif sh_type == SHT_NOBITS:
            kind = "bss"
        elif flags & SHF_EXECINSTR:
            kind = "text"
        elif flags & SHF_WRITE:
            kind = "data"
        else:
            kind = "rodata"
        kept.append(Section(name, addr, size, kind))
    total = {k: sum(s.size for s in kept if s.kind == k)
             for k in ("text", "rodata", "data", "bss", "stack", "external")}
    arena = symbols.get(ARENA_SYMBOL, (0, 0))[1]
    out_dir = elf.parent
    return BuildResult(
        project_dir=str(project if project is not None else elf.parent.parent),
        board=board.name,
        elf=str(elf),
        bin=str(out_dir / "firmware.bin") if (out_dir / "firmware.bin").exists() else None,
        hex=str(out_dir / "firmware.hex") if (out_dir / "firmware.hex").exists() else None,
        flash_bytes=total["text"] + total["rodata"] + total["data"],
        ram_bytes=total["data"] + total["bss"] + total["stack"],
        arena_bytes=arena,
        stack_bytes=total["stack"],
        text_bytes=total["text"],
        rodata_bytes=total["rodata"],
        data_bytes=total["data"],
        bss_bytes=total["bss"],
        flash_capacity=board.flash_bytes,
        ram_capacity=board.ram_bytes,
        sections=kept,
        external_bytes=total["external"],
        external_capacity=board.external_bytes,
        **_flash_split(out_dir / "firmware.map", symbols, total["text"] + total["rodata"] + total["data"],
                       external=[s for s in kept if s.kind == "external"]),
    )


# Weights by symbol: the native generator's weight tensors `model_w<N>` and each step's
# arrays and structs `model_op<N>_<name>` (codegen.py names them so; the project prefix is
# "model"); a TFLM project's whole .tflite, `g_<name>_model_data` (tflm_export.py).
WEIGHT_SYMBOL = re.compile(r"model_(w\d+|op\d+_\w+)$|g_\w+_model_data$")
# An input section in a GNU ld map: " .text.name" then address, size and the object file,
# on the same line or (for a long name) the next one.
_MAP_SECTION_NAME = re.compile(r"^ (\.\S+)(.*)$")
_MAP_PLACEMENT = re.compile(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)$")
# Runtime code by part: the native runtime's kernels (objects under obj/runtime/), or the
# TensorFlow Lite Micro library (interpreter, allocator and kernels, CMSIS-NN included);
# the protocol app and the board support of either.
_CODE_PARTS = {"runtime": "kernels", "app": "app", "board": "board"}
TFLM_LIBRARY = "libtensorflow-microlite.a"


def _code_part(obj: str) -> str | None:
    if f"{TFLM_LIBRARY}(" in obj:
        return "tflm"
    parts = Path(obj).parts
    top = parts[parts.index("obj") + 1] if "obj" in parts[:-1] else None
    return _CODE_PARTS.get(top)


def _flash_split(map_path: Path, symbols: dict[str, tuple[int, int]], flash_bytes: int,
                 external: list[Section] = ()) -> dict:
    """Weights in flash from the ELF symbol table (those in an `external` section are not); runtime code (kernels or the TFLM library, app,
    board) from the link map's code sections of those objects, after --gc-sections;
    everything else is other (the generated model code and its tables, libc, the vector
    table, .data values)."""
    if not map_path.is_file():
        return {}
    text = map_path.read_text(errors="replace")
    start = text.find("Linker script and memory map")
    if start < 0:
        return {}
    tflm = f"{TFLM_LIBRARY}(" in text[start:]
    code = dict.fromkeys(["tflm" if tflm else "kernels", "app", "board"], 0)
    name = None
    for line in text[start:].splitlines():
        named = _MAP_SECTION_NAME.match(line)
        if named:
            name, line = named.group(1), named.group(2)
        placed = _MAP_PLACEMENT.match(line)
        if not placed or name is None:
            continue
        size, obj = placed.groups()
        section, name = name, None
        if not (section == ".text" or section.startswith(".text.")):
            continue
        part = _code_part(obj)
        if part in code:
            code[part] += int(size, 16)

    def in_flash(address: int) -> bool:
        return not any(s.address <= address < s.address + s.size for s in external)

    weights = sum(size for name, (address, size) in symbols.items()
                  if WEIGHT_SYMBOL.match(name) and in_flash(address))
    runtime = sum(code.values())
    return {"flash_split": {"weights": weights, "runtime_code": runtime, "other": flash_bytes - weights - runtime},
            "runtime_code": code}


def read_elf(path: Path) -> tuple[list[tuple[str, int, int, int, int]], dict[str, tuple[int, int]]]:
    """Section headers (name, type, flags, address, size) and object symbols (address, size) of an ELF file.

    Handles 32- and 64-bit little-endian ELF (Arm firmware and the host build).
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise UserError(f"{path} is not an ELF file")
    if data[5] != 1:
        raise UserError(f"{path}: big-endian ELF is not supported")
    is64 = data[4] == 2
    if is64:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        sh_fmt = "<IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        sh_fmt = "<IIIIIIIIII"
    headers = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
    # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
    strtab_off = headers[shstrndx][4]

    def name_at(table_offset: int, index: int) -> str:
        end = data.index(b"\0", table_offset + index)
        return data[table_offset + index: end].decode(errors="replace")

    sections = [(name_at(strtab_off, h[0]), h[1], h[2], h[3], h[5]) for h in headers]
    symbols: dict[str, tuple[int, int]] = {}
    for h in headers:
        if h[1] != SHT_SYMTAB:
            continue
        sym_strtab = headers[h[6]][4]
        entsize = h[9] or (24 if is64 else 16)
        for off in range(h[4], h[4] + h[5], entsize):
            if is64:
                st_name, st_info, _, _, st_value, st_size = struct.unpack_from("<IBBHQQ", data, off)
            else:
                st_name, st_value, st_size, st_info, _, _ = struct.unpack_from("<IIIBBH", data, off)
            if st_info & 0xF == 1 and st_name:  # STT_OBJECT
                symbols[name_at(sym_strtab, st_name)] = (st_value, st_size)
    return sections, symbols
