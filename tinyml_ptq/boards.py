"""Board registry: every target the firmware can be generated for.

Each board names its CPU, compiler flags, memory capacity (from the board's
real memory map: the numbers here are the LENGTHs in its linker script),
how it runs (a QEMU machine, the host, or real hardware) and, in `verified`,
honestly how far it has been tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import UserError

KiB = 1024
MiB = 1024 * KiB

_CORTEX_M_COMMON = ("cortex-m",)
_QEMU_VERIFIED = ("boots in QEMU {machine} (-icount shift=0); INFO, INVOKE (bit-exact with the TFLM reference "
                  "on AD01), PROFILE, OP_NAMES, protocol errors and the FAULT frame tested by "
                  "tests/test_firmware_build.py")
_RENODE_VERIFIED = ("runs in Renode ({platform}); the digits example bit-exact with the TFLM reference{more} "
                    "(tests/test_renode.py); not yet tried on hardware")


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str  # human-readable core, e.g. "Cortex-M4F"
    cpu_flags: tuple[str, ...]  # -mcpu/-mfpu/-mfloat-abi (empty for the host)
    flash_bytes: int | None  # code + read-only data capacity; None: no limit (host)
    ram_bytes: int | None  # data + bss + stack capacity; None: no limit (host)
    clock_hz: int  # nominal core clock reported by INFO
    tick_unit: str  # "instructions", "cycles" or "nanoseconds"
    qemu_machine: str | None  # qemu-system-arm -machine NAME, or None
    verified: str  # how this board is verified
    source_dirs: tuple[str, ...]  # folders under firmware/boards copied into the project
    stack_bytes: int = 16 * KiB
    dsp: bool = False  # the Arm DSP extension (SMLAD, SXTB16): `--kernels auto` picks kernels/dsp
    mve: bool = False  # the M-profile Vector Extension (Helium): `--kernels auto` picks kernels/helium
    # Renode: the platform description (Renode's own, "platforms/...", or one shipped in
    # tinyml_ptq/renode/) and the UART the firmware talks on; None: not emulated by Renode.
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
        """The native runtime's kernel set that `--kernels auto` picks on this board."""
        return "helium" if self.mve else "dsp" if self.dsp else "reference"

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


def _mps2(name: str, description: str, cpu: str, flags: tuple[str, ...], clock_hz: int, dsp: bool,
          psram_address: int) -> Board:
    machine = name
    return Board(dsp=dsp,
        name=name, description=description, cpu=cpu, cpu_flags=flags,
        flash_bytes=4 * MiB, ram_bytes=4 * MiB, clock_hz=clock_hz, tick_unit="instructions",
        qemu_machine=machine, verified=_QEMU_VERIFIED.format(machine=machine),
        source_dirs=(*_CORTEX_M_COMMON, "mps2", name),
        external_bytes=16 * MiB,
        external_memory=f"16 MB PSRAM at 0x{psram_address:08x}, loaded with the image like the 4 MB code memory",
    )


BOARDS: dict[str, Board] = {b.name: b for b in [
    _mps2("mps2-an386", "Arm MPS2 FPGA board, AN386 image (default)", "Cortex-M4F",
          ("-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), 25_000_000, dsp=True,
          psram_address=0x21000000),
    _mps2("mps2-an500", "Arm MPS2 FPGA board, AN500 image", "Cortex-M7 (double-precision FPU)",
          ("-mthumb", "-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"), 25_000_000, dsp=True,
          psram_address=0x60000000),
    _mps2("mps2-an385", "Arm MPS2 FPGA board, AN385 image", "Cortex-M3 (no FPU)",
          ("-mthumb", "-mcpu=cortex-m3", "-mfloat-abi=soft"), 25_000_000, dsp=False,
          psram_address=0x21000000),
    _mps2("mps2-an505", "Arm MPS2 FPGA board, AN505 image (IoT Kit, TrustZone; runs Secure)",
          "Cortex-M33F (DSP, single-precision FPU)",
          ("-mthumb", "-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"), 20_000_000, dsp=True,
          psram_address=0x80000000),
    Board(
        name="mps3-an547", description="Arm MPS3 FPGA board, AN547 image (Corstone-300, TrustZone; runs Secure)",
        cpu="Cortex-M55 (DSP, FPU, Helium)",
        cpu_flags=("-mthumb", "-mcpu=cortex-m55", "-mfpu=auto", "-mfloat-abi=hard"),
        flash_bytes=512 * KiB, ram_bytes=4 * MiB, clock_hz=32_000_000, tick_unit="instructions",
        qemu_machine="mps3-an547",
        verified=_QEMU_VERIFIED.format(machine="mps3-an547") + "; the digits example (tests/test_digits_boards.py), "
                 "the DSP kernels' randomized models (tests/test_dsp_kernels.py) and KWS with its weights in DDR4 "
                 "(tests/test_external_weights.py) bit-exact; not yet tried on an MPS3 board",
        source_dirs=(*_CORTEX_M_COMMON, "mps2", "mps3-an547"), dsp=True, mve=True,
        external_bytes=256 * MiB,
        external_memory="256 MB DDR4 at 0x70000000 (its Secure window), loaded with the image like the "
                        "512 KB ITCM code memory",
    ),
    Board(
        name="nucleo-l4r5zi", description="ST NUCLEO-L4R5ZI (STM32L4R5ZI), LPUART1 on the ST-LINK virtual COM port",
        cpu="Cortex-M4F", cpu_flags=("-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
        flash_bytes=2 * MiB, ram_bytes=640 * KiB, clock_hz=120_000_000, tick_unit="cycles", qemu_machine=None,
        verified=_RENODE_VERIFIED.format(platform="stm32l4r5.repl shipped with the toolkit, RCC as a register "
                                                  "file", more=""),
        source_dirs=(*_CORTEX_M_COMMON, "stm32", "nucleo-l4r5zi"), dsp=True,
        renode_platform="stm32l4r5.repl", renode_uart="lpuart1",
    ),
    Board(
        name="nucleo-g0b1re", description="ST NUCLEO-G0B1RE (STM32G0B1RE), USART2 on the ST-LINK virtual COM port",
        cpu="Cortex-M0+", cpu_flags=("-mthumb", "-mcpu=cortex-m0plus", "-mfloat-abi=soft"),
        flash_bytes=512 * KiB, ram_bytes=144 * KiB, clock_hz=64_000_000, tick_unit="cycles", qemu_machine=None,
        verified="runs in Renode (stm32g0b1.repl shipped with the toolkit: Renode's stm32g0 with the G0B1's "
                 "Cortex-M0+, memory and clocks; ticks from TIM2); the digits example and AD01 bit-exact with the "
                 "TFLM reference, the FAULT frame, Armv6-M instructions only (tests/test_cortex_m0plus.py); not yet "
                 "tried on hardware",
        source_dirs=(*_CORTEX_M_COMMON, "stm32", "nucleo-g0b1re"), dsp=False,
        renode_platform="stm32g0b1.repl", renode_uart="usart2",
    ),
    Board(
        name="stm32f4-disco", description="ST STM32F4DISCOVERY (STM32F407VG), USART2 on PA2/PA3",
        cpu="Cortex-M4F", cpu_flags=("-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
        flash_bytes=1 * MiB, ram_bytes=128 * KiB, clock_hz=168_000_000, tick_unit="cycles", qemu_machine=None,
        verified=_RENODE_VERIFIED.format(platform="stm32f4_discovery-kit",
                                         more=", KWS, emulate over TCP, the FAULT frame and a hung firmware"),
        source_dirs=(*_CORTEX_M_COMMON, "stm32", "stm32f4-disco"), dsp=True,
        renode_platform="platforms/boards/stm32f4_discovery-kit.repl", renode_uart="usart2",
    ),
    Board(
        name="stm32f746-disco", description="ST 32F746GDISCOVERY (STM32F746NG), USART1 on the ST-LINK virtual COM port",
        cpu="Cortex-M7 (single-precision FPU)",
        cpu_flags=("-mthumb", "-mcpu=cortex-m7", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"),
        flash_bytes=1 * MiB, ram_bytes=320 * KiB, clock_hz=216_000_000, tick_unit="cycles", qemu_machine=None,
        verified=_RENODE_VERIFIED.format(platform="stm32f7_discovery-bb", more=""),
        source_dirs=(*_CORTEX_M_COMMON, "stm32", "stm32f746-disco"), dsp=True,
        renode_platform="platforms/boards/stm32f7_discovery-bb.repl", renode_uart="usart1",
    ),
    Board(
        name="host", description="this computer: native build, protocol on stdin/stdout",
        cpu="host CPU (native gcc)", cpu_flags=(), flash_bytes=None, ram_bytes=None,
        clock_hz=1_000_000_000, tick_unit="nanoseconds", qemu_machine=None,
        verified="built and run natively; INFO, INVOKE (bit-exact with the TFLM reference), protocol errors "
                 "and the FAULT frame tested by tests/test_firmware_build.py",
        source_dirs=("host",), stack_bytes=0,
    ),
]}

DEFAULT_BOARD = "mps2-an386"


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board '{name}'; choose one of: {', '.join(BOARDS)} "
                        "(see 'tinyml-ptq boards')") from None


WEIGHTS_MEMORIES = ("internal", "external")


def check_weights_memory(board: Board, weights_memory: str) -> None:
    """Weights stay in the chip's flash ("internal") or go to the board's external memory."""
    if weights_memory not in WEIGHTS_MEMORIES:
        raise UserError(f"unknown weights memory '{weights_memory}'; choose one of: {', '.join(WEIGHTS_MEMORIES)}")
    if weights_memory == "external" and board.external_bytes is None:
        boards = ", ".join(b.name for b in BOARDS.values() if b.external_bytes)
        raise UserError(f"{board.name} has no external memory for weights; --weights-memory external is for "
                        f"{boards}")


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
KERNEL_SETS = {"native": ("reference", "dsp", "helium"), "tflm": ("reference", "cmsis_nn")}
KERNEL_CHOICES = ("auto", *sorted({k for sets in KERNEL_SETS.values() for k in sets}))


def resolve_kernels(board: Board, kernels: str, runtime: str = "native") -> str:
    """The kernel set for `board` and `runtime`.

    native: auto is helium on cores with MVE, dsp on cores with the DSP extension, else
    reference; dsp on the host compiles the DSP kernels with portable C in place of the
    instructions (for testing their logic natively); a Cortex-M core without the extension
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
