"""Board registry: every target the firmware can be generated for.

Each board is a data file, firmware/boards/<name>/board.toml, beside its linker script and
start-up and UART code: its CPU and compiler flags, memory capacity (from the board's real
memory map: the LENGTHs in its linker script), how it runs (a QEMU machine, a Renode platform,
the host, or real hardware) and, in `verified`, honestly how far it has been tested. Adding a
board that an emulator already models takes that folder and nothing in Python.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields

from ..core.errors import UserError
from ..core.resources import FIRMWARE_DIR

KiB = 1024
MiB = 1024 * KiB
BOARD_FILE = "board.toml"


@dataclass(frozen=True)
class Board:
    name: str  # its folder under firmware/boards
    description: str
    cpu: str  # human-readable core, e.g. "Cortex-M4F"
    cpu_flags: tuple[str, ...]  # -mcpu/-mfpu/-mfloat-abi (empty for the host)
    clock_hz: int  # nominal core clock reported by INFO
    tick_unit: str  # "instructions", "cycles" or "nanoseconds"
    verified: str  # how this board is verified
    source_dirs: tuple[str, ...]  # folders under firmware/boards copied into the project, in order
    flash_bytes: int | None = None  # code + read-only data capacity (the linker script's FLASH); None: no limit
    ram_bytes: int | None = None  # data + bss + stack capacity (RAM); None: no limit (host)
    stack_bytes: int = 16 * KiB  # the linker script's __stack_size__
    dsp: bool = False  # the Arm DSP extension (SMLAD, SXTB16): `--kernels auto` picks kernels/dsp
    mve: bool = False  # the M-profile Vector Extension (Helium): `--kernels auto` picks kernels/helium
    qemu_machine: str | None = None  # qemu-system-arm -machine NAME, or None
    # Renode: the platform description (Renode's own, "platforms/...", or one shipped in
    # tinyml_ptq/device/renode/) and the UART the firmware talks on; None: not emulated by Renode.
    renode_platform: str | None = None
    renode_uart: str | None = None
    # Memory-mapped memory outside the chip that can hold the model's weights (`--weights-memory
    # external`): its capacity and what it is; the board's linker.ld maps it as region EXTERNAL.
    external_bytes: int | None = None
    external_memory: str | None = None

    @property
    def emulator(self) -> str | None:
        """What runs this board without hardware: "qemu", "renode", or None (native or hardware only)."""
        if self.qemu_machine:
            return "qemu"
        if self.renode_platform:
            return "renode"
        return None

    @property
    def verification(self) -> str:
        """How far the board is verified, in short: emulated in tests, run natively, or cross-built only."""
        if self.emulator:
            return "emulated in tests"
        return "run natively in tests" if self.is_host else "cross-built only"

    @property
    def kernels(self) -> str:
        """The native runtime's kernel set that `--kernels auto` picks on this board: scalar on
        Cortex-M cores without the DSP extension, reference on the host."""
        return "helium" if self.mve else "dsp" if self.dsp else "reference" if self.is_host else "scalar"

    @property
    def is_host(self) -> bool:
        return self.name == "host"

    @property
    def toolchain(self) -> str:
        return "native" if self.is_host else "arm-none-eabi"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cpu_flags"] = list(self.cpu_flags)
        data["source_dirs"] = list(self.source_dirs)
        data["toolchain"] = self.toolchain
        data["emulator"] = self.emulator
        data["verification"] = self.verification
        data["kernels"] = self.kernels
        return data


def load_board(folder) -> Board:
    """The board described by `folder`/board.toml; its name is the folder's."""
    path = folder / BOARD_FILE
    with path.open("rb") as f:
        data = tomllib.load(f)
    known = {f.name for f in fields(Board)} - {"name"}
    if set(data) - known:
        raise ValueError(f"{path}: unknown fields {', '.join(sorted(set(data) - known))}")
    return Board(name=folder.name, **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# The default board first, then as `tinyml-ptq boards` lists them: QEMU's, Renode's, the host.
_ORDER = ("mps2-an386", "mps2-an500", "mps2-an385", "mps2-an505", "mps3-an547")
BOARDS: dict[str, Board] = {b.name: b for b in sorted(
    (load_board(f) for f in (FIRMWARE_DIR / "boards").iterdir() if (f / BOARD_FILE).is_file()),
    key=lambda b: (b.is_host, b.emulator != "qemu", _ORDER.index(b.name) if b.name in _ORDER else 0, b.name))}

DEFAULT_BOARD = "mps2-an386"


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board '{name}'; choose one of: {', '.join(BOARDS)} "
                        "(see 'tinyml-ptq boards')") from None


def as_board(board: str | Board) -> Board:
    """`board` itself, or the board of that name: stages take either, and resolve a name once."""
    return board if isinstance(board, Board) else get_board(board)


def project_board(meta: dict) -> Board:
    """The board a project was generated for, from its project.json."""
    name = meta.get("board", "")
    if name not in BOARDS:
        raise UserError(f"the project was generated for board '{name}', which this tinyml-ptq does not know; "
                        f"generate it again for one of: {', '.join(BOARDS)}")
    return BOARDS[name]


WEIGHTS_MEMORIES = ("internal", "external")


def check_weights_memory(board: Board, weights_memory: str) -> None:
    """Weights stay in the chip's flash ("internal") or go to the board's external memory."""
    if weights_memory not in WEIGHTS_MEMORIES:
        raise UserError(f"unknown weights memory '{weights_memory}'; choose one of: {', '.join(WEIGHTS_MEMORIES)}")
    if weights_memory == "external" and board.external_bytes is None:
        boards = ", ".join(b.name for b in BOARDS.values() if b.external_bytes)
        raise UserError(f"{board.name} has no external memory for weights; --weights-memory external is for "
                        f"{boards}")


def memory_shortfall(board: Board, flash: int = 0, ram: int = 0, external: int = 0) -> list[str]:
    """What `flash`, `ram` and `external` bytes need beyond the board's memories: ["flash by N bytes", ...]."""
    over = []
    if board.flash_bytes is not None and flash > board.flash_bytes:
        over.append(f"flash by {flash - board.flash_bytes} bytes")
    if board.ram_bytes is not None and ram > board.ram_bytes:
        over.append(f"RAM by {ram - board.ram_bytes} bytes")
    if external > (board.external_bytes or 0):
        over.append(f"external memory by {external - (board.external_bytes or 0)} bytes")
    return over


def more_memory_hint(board: Board, weights_memory: str, command: str = "generate") -> str:
    """What to do when a model does not fit `board`: its external memory, where it has one the
    weights are not in yet, else a smaller model or a bigger board."""
    if board.external_bytes and weights_memory == "internal":
        return (f"{command} with --weights-memory external to put the weights in {board.name}'s external memory "
                f"({board.external_memory}), or use a smaller model or a board with more memory")
    return "use a smaller model or a board with more memory (see 'tinyml-ptq boards')"


def list_boards() -> list[Board]:
    return list(BOARDS.values())


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    if n % MiB == 0:
        return f"{n // MiB} MB"
    if n % KiB == 0:
        return f"{n // KiB} KB"
    return f"{n} B"


# The kernel sets each runtime can be built with; "auto" picks the optimized one
# where the board's core has the DSP extension (and Helium, for the native runtime).
KERNEL_SETS = {"native": ("reference", "dsp", "helium", "scalar"), "tflm": ("reference", "cmsis_nn")}
KERNEL_CHOICES = ("auto", *sorted({k for sets in KERNEL_SETS.values() for k in sets}))


def resolve_kernels(board: Board, kernels: str, runtime: str = "native") -> str:
    """The kernel set for `board` and `runtime`.

    native: auto is helium on cores with MVE, dsp on cores with the DSP extension, scalar on
    other Cortex-M cores (M0, M0+, M3), reference on the host; scalar is portable C and runs on
    any board, host included (for testing it natively); dsp on the host compiles the DSP kernels
    with portable C in place of the instructions (for testing their logic natively); a Cortex-M core without the extension
    cannot run them. helium needs a core with MVE (Cortex-M55, M85), host included.
    tflm: auto is cmsis_nn (TFLM's OPTIMIZED_KERNEL_DIR=cmsis_nn) on cores with the DSP
    extension, as TFLM users build it, else TFLM's reference kernels; cmsis_nn needs a
    Cortex-M core (CMSIS-NN has plain-C paths for those without DSP).
    """
    if runtime not in KERNEL_SETS:
        raise UserError(f"unknown runtime '{runtime}'; choose one of: {', '.join(KERNEL_SETS)}")
    sets = KERNEL_SETS[runtime]
    if kernels == "auto":
        if runtime == "native":
            return board.kernels
        return sets[1] if board.dsp else sets[0]
    if kernels not in sets:
        other = next((r for r, s in KERNEL_SETS.items() if kernels in s), None)
        why = f"'{kernels}' is a kernel set of the {other} runtime" if other else f"unknown kernel set '{kernels}'"
        raise UserError(f"{why}; the {runtime} runtime has: auto, {', '.join(sets)}")
    if kernels == "dsp" and not board.dsp and not board.is_host:
        raise UserError(f"board {board.name} ({board.cpu}) has no DSP extension; "
                        "use --kernels reference (or auto)")
    if kernels == "helium" and not board.mve:
        with_mve = ", ".join(b.name for b in BOARDS.values() if b.mve)
        raise UserError(f"board {board.name} ({board.cpu}) has no Helium (MVE); the helium kernels are for "
                        f"{with_mve}; use --kernels dsp, reference or auto")
    if kernels == "cmsis_nn" and board.is_host:
        raise UserError("TFLM's cmsis_nn kernels are for Arm Cortex-M boards; use --kernels reference on the host")
    return kernels


# Optimization levels `build --opt` passes to the compiler (-O2 when none is given).
OPT_LEVELS = ("-O0", "-Og", "-O1", "-O2", "-O3", "-Os", "-Oz")
