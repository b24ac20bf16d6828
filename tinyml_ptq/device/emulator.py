"""Start the firmware where it runs without hardware: QEMU for the MPS2 boards, Renode
for the STM32 boards, or the native executable for the host board; and make sure it stops.

    qemu-system-arm -machine M -nographic -monitor none -icount shift=0 -kernel ELF
        -serial stdio                              (UART on our pipes), or
        -serial tcp:HOST:PORT,server=on,wait=off,nodelay=on   (UART on a TCP port;
                                                   nodelay: the UART sends byte by byte)

`-icount shift=0` makes the virtual clock advance 1 ns per guest instruction, so
the firmware's SysTick counts instructions, deterministically.

Renode (`RenodeEmulator`) runs a generated monitor script: the board's platform
description, a DWT cycle counter, the ELF, and the board's UART on a server socket
terminal (TCP) that the host connects to. It is found through `--renode PATH`
(`set_renode`), $RENODE, or `renode` on PATH, in that order.

Every child runs in its own process group and is registered here; it is killed
(SIGTERM, then SIGKILL) when the `Emulator` is closed, on interpreter exit
(atexit), on SIGTERM/SIGHUP (turned into SystemExit so `finally` blocks run) and
Ctrl-C (KeyboardInterrupt), and, through PR_SET_PDEATHSIG, if this process dies
without cleaning up.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..core.errors import UserError
from .protocol import DeviceError
from .transport import ProcessTransport, SocketTransport, Transport

QEMU = "qemu-system-arm"
# An emulator loses no bytes: when it is silent, a loaded machine is starving it of CPU, so a
# client talking to one waits 8 timeouts (16 s at the default 2 s) before it counts it as hung;
# a board on a port gets the client's default 3.
EMULATOR_SILENT_RETRIES = 7

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_handlers_installed = False


def _kill(proc: subprocess.Popen, grace: float = 2.0) -> None:
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    with _live_lock:
        _live.discard(proc)


def kill_all() -> None:
    """Stops every child started here that is still running."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill(proc, grace=0.5)


def _on_signal(signum, frame):  # pragma: no cover - exercised by killing a CLI subprocess
    kill_all()
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(kill_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
        except (ValueError, OSError):
            pass


def _launcher() -> list[str]:
    """`setpriv --pdeathsig KILL`: the child dies with the thread that started it."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def qemu_command(elf: str | os.PathLike, machine: str, serial: str = "stdio") -> list[str]:
    return [QEMU, "-machine", machine, "-nographic", "-monitor", "none", "-icount", "shift=0",
            "-serial", serial, "-kernel", str(elf)]


class Emulator:
    """One running instance of a firmware image.

    machine: a QEMU machine name, or None to run `elf` natively (the host board).
    serial: "stdio" (talk over the child's pipes) or "tcp" (QEMU serves the UART on
    host:port; port 0 picks a free one). Use as a context manager, or call close().
    """

    def __init__(self, elf: str | os.PathLike, machine: str | None, serial: str = "stdio",
                 host: str = "127.0.0.1", port: int = 0):
        self.elf = Path(elf)
        self.machine = machine
        self.serial = serial
        self.host = host
        self.port = port
        self.proc: subprocess.Popen | None = None
        self._stderr = None
        if not self.elf.is_file():
            raise UserError(f"{self.elf} not found; build the project first ('tinyml-ptq build DIR')")
        if serial not in ("stdio", "tcp"):
            raise ValueError(f"serial must be 'stdio' or 'tcp', not {serial!r}")
        if machine is None and serial != "stdio":
            raise UserError("the host build talks over stdin/stdout only; use --serial stdio "
                            "or a board with a QEMU machine")
        self._check_tool()

    # Under QEMU and on the host the device's own tick unit holds; Renode overrides this.
    tick_unit: str | None = None

    @property
    def kind(self) -> str | None:
        return "qemu" if self.machine else None

    def _check_tool(self) -> None:
        if self.machine is not None and shutil.which(QEMU) is None:
            raise UserError(f"{QEMU} not found; install it (apt-get install qemu-system-arm)")

    @property
    def url(self) -> str | None:
        return f"socket://{self.host}:{self.port}" if self.serial == "tcp" else None

    def describe(self) -> str:
        what = f"QEMU ({self.machine})" if self.machine else f"host firmware {self.elf}"
        return what + self._stderr_tail()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f" [{text.splitlines()[-1][:300]}]" if text else ""

    def command(self) -> list[str]:
        if self.machine is None:
            return [str(self.elf.resolve())]
        if self.serial == "tcp":
            if not self.port:
                self.port = free_port(self.host)
            serial = f"tcp:{self.host}:{self.port},server=on,wait=off,nodelay=on"
        else:
            serial = "stdio"
        return qemu_command(self.elf, self.machine, serial)

    def start(self) -> "Emulator":
        _install_handlers()
        self._stderr = tempfile.TemporaryFile()
        stdio = subprocess.PIPE if self.serial == "stdio" else subprocess.DEVNULL
        proc = subprocess.Popen(_launcher() + self.command(), stdin=stdio, stdout=stdio, stderr=self._stderr,
                                start_new_session=True)
        with _live_lock:
            _live.add(proc)
        self.proc = proc
        if self.serial == "tcp":
            try:
                _wait_listening(self)
            except BaseException:
                self.close()
                raise
        return self

    def transport(self, connect_timeout: float = 10.0) -> Transport:
        """A transport to the running firmware's UART."""
        if self.proc is None:
            raise RuntimeError("start() the emulator first")
        if self.serial == "stdio":
            return ProcessTransport(self.proc, self.describe)
        deadline = time.monotonic() + connect_timeout
        while True:
            if self.proc.poll() is not None:
                raise DeviceError(f"{self.describe()} exited with status {self.proc.returncode}")
            try:
                return SocketTransport(self.host, self.port, connect_timeout=0.2)
            except DeviceError:
                if time.monotonic() >= deadline:
                    raise DeviceError(f"{self.describe()} does not accept connections on "
                                      f"{self.host}:{self.port}") from None

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for the child to exit (None: until it does); its status, or None on timeout."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "Emulator":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- Renode

RENODE_ENV = "RENODE"
RENODE_HOW_TO_GET = ("install Renode from https://renode.io (.deb, portable .tar.gz) with Mono "
                     "(apt-get install mono-runtime), then pass --renode PATH, set RENODE=PATH or put renode on PATH")
# Renode advances virtual time, and with it the DWT counter, once per quantum: 5 us is 840
# instructions at 168 MIPS. Smaller quanta resolve finer but run slower (1 us: ~4x slower).
RENODE_QUANTUM_S = 0.000005
RENODE_START_TIMEOUT = 120.0  # Mono and the platform load in seconds; a loaded machine takes longer
PLATFORMS_DIR = Path(__file__).resolve().parent / "renode"  # platform descriptions shipped with the toolkit
_renode_choice: str | None = None


def set_renode(path: str | os.PathLike | None) -> None:
    """Use this Renode launcher (the CLI's --renode) before $RENODE and PATH."""
    global _renode_choice
    _renode_choice = None if path is None else str(path)


def find_renode() -> Path:
    """The Renode launcher: set_renode()'s, else $RENODE, else `renode` on PATH."""
    for given, source in ((_renode_choice, "--renode"), (os.environ.get(RENODE_ENV), f"${RENODE_ENV}")):
        if given:
            path = Path(given).expanduser()
            if path.is_dir():
                path = path / "renode"
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise UserError(f"{source} {given}: no Renode launcher there; give the 'renode' script of a "
                                f"Renode install (or its folder)")
            return path.resolve()
    found = shutil.which("renode")
    if found is None:
        raise UserError(f"Renode not found; {RENODE_HOW_TO_GET}")
    return Path(found)


def renode_platform(board) -> Path | None:
    """The platform description shipped with the toolkit for `board`, or None: it is Renode's own."""
    shipped = PLATFORMS_DIR / board.renode_platform
    return shipped if shipped.is_file() else None


def renode_script(board, elf: str | os.PathLike, port: int, platform: str | os.PathLike | None = None) -> str:
    """The monitor script that boots `elf` on `board` with its UART on 127.0.0.1:`port`.

    platform: the path of the board's platform description if it is not Renode's own
    (Renode's monitor takes no quoted paths: neither this nor `elf` may contain a space).

    The DWT counts virtual time at the board's clock and the CPU executes clock-MHz
    million instructions per virtual second, so one DWT count is one instruction
    (to within a quantum) and the firmware's millisecond timeouts are the real board's.
    """
    mhz = board.clock_hz // 1_000_000
    dwt = f"dwt: Miscellaneous.DWT @ sysbus 0xE0001000 {{ frequency: {board.clock_hz} }}"
    return "\n".join([
        "using sysbus",
        f'mach create "{board.name}"',
        f"machine LoadPlatformDescription @{platform or board.renode_platform}",
        f'machine LoadPlatformDescriptionFromString "{dwt}"',
        f"cpu PerformanceInMips {mhz}",
        f'emulation SetGlobalQuantum "{RENODE_QUANTUM_S:.6f}"',
        f"sysbus LoadELF @{elf}",
        # Last: once the port listens, everything above has loaded.
        f'emulation CreateServerSocketTerminal {port} "uart" false',
        f"connector Connect sysbus.{board.renode_uart} uart",
        "start",
        "",
    ])


# Renode's log lines that do not mean the start failed: the platform's SVD register
# descriptions are fetched from the network and skipped offline.
_RENODE_HARMLESS = ("download", ".svd")


def renode_error(log: str) -> str | None:
    """The first line of a Renode log that says what went wrong, without its timestamp."""
    for line in log.splitlines():
        text = re.sub(r"^[(\w)]*\s*\d\d:\d\d:\d\d\.\d+ ", "", line).strip()
        is_error = text.startswith("[ERROR]") or any(
            mark in text for mark in ("error executing command", "Exception", "not found", "Could not"))
        if is_error and not any(h in text.lower() for h in _RENODE_HARMLESS):
            return text[:300]
    return None


class RenodeEmulator(Emulator):
    """A firmware image running on a board in Renode, its UART on a TCP port.

    Renode's stdin is a pipe this process holds and never writes: with --console
    Renode quits at end of input, so it also stops if this process dies.
    """

    tick_unit = "instructions"

    @property
    def kind(self) -> str | None:
        return "renode"

    def __init__(self, elf: str | os.PathLike, board, host: str = "127.0.0.1", port: int = 0):
        self.board = board
        self.renode = find_renode()
        self._workdir: Path | None = None
        self._log_text = ""
        super().__init__(elf, board.renode_platform, "tcp", host=host, port=port)

    def _check_tool(self) -> None:
        pass  # find_renode() has checked

    def describe(self) -> str:
        return f"Renode ({self.board.name}, {Path(self.board.renode_platform).stem})" + self._log_tail()

    def _log_tail(self) -> str:
        line = renode_error(self._read_log())
        return f" [{line}]" if line else ""

    def _read_log(self) -> str:
        if self._workdir is not None and (self._workdir / "renode.log").is_file():
            self._log_text = (self._workdir / "renode.log").read_text(errors="replace")
        return self._log_text

    def command(self) -> list[str]:
        return [str(self.renode), "--disable-xwt", "--console", "--plain", str(self._workdir / "boot.resc")]

    def start(self) -> "RenodeEmulator":
        _install_handlers()
        if not self.port:
            self.port = free_port(self.host)
        self._workdir = Path(tempfile.mkdtemp(prefix="tinyml-ptq-renode-"))
        # Links with space-free names: the monitor cannot quote a path.
        elf = self._workdir / "firmware.elf"
        elf.symlink_to(self.elf.resolve())
        platform = renode_platform(self.board)
        if platform is not None:
            (self._workdir / platform.name).symlink_to(platform)
            platform = self._workdir / platform.name
        (self._workdir / "boot.resc").write_text(renode_script(self.board, elf, self.port, platform))
        with open(self._workdir / "renode.log", "wb") as log:
            proc = subprocess.Popen(_launcher() + self.command(), stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=self._workdir, start_new_session=True)
        with _live_lock:
            _live.add(proc)
        self.proc = proc
        try:
            self._wait_started()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_started(self) -> None:
        deadline = time.monotonic() + RENODE_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                log = self._read_log()
                why = renode_error(log) or next((ln.strip() for ln in log.splitlines() if ln.strip()), "no output")
                raise UserError(f"Renode ({self.renode}) exited with status {self.proc.returncode} while "
                                f"starting {self.board.name}: {why}")
            failed = renode_error(self._read_log())
            if failed:
                raise UserError(f"Renode could not start {self.board.name}: {failed}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise UserError(f"Renode did not open {self.host}:{self.port} for {self.board.name} within "
                                    f"{RENODE_START_TIMEOUT:.0f} s") from None
                time.sleep(0.1)

    def close(self) -> None:
        super().close()
        if self._workdir is not None:
            self._read_log()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def emulator_for(board, elf: str | os.PathLike, serial: str = "stdio", host: str = "127.0.0.1",
                 port: int = 0) -> Emulator:
    """The emulator that runs `board` (not started): QEMU, Renode (always on TCP) or the host build."""
    if board.emulator == "renode":
        return RenodeEmulator(elf, board, host=host, port=port)
    if board.emulator is None and not board.is_host:
        raise UserError(f"board {board.name} has no emulator; flash it ('tinyml-ptq flash DIR') and run with "
                        "--port /dev/ttyACM0 (or another serial port)")
    return Emulator(elf, board.qemu_machine, serial, host=host, port=port)


# ----------------------------------------------------------------------------- `tinyml-ptq emulate`


def parse_serial(spec: str) -> tuple[str, str, int]:
    """'stdio' or 'tcp:HOST:PORT' (also socket://HOST:PORT) -> (kind, host, port)."""
    if spec == "stdio":
        return "stdio", "", 0
    from .transport import parse_tcp

    tcp = parse_tcp(spec if "://" in spec or spec.startswith("tcp:") else f"tcp:{spec}")
    if tcp is None:
        raise UserError(f"bad --serial '{spec}'; use tcp:127.0.0.1:PORT or stdio")
    host, port = tcp
    if not 0 < port < 65536:
        raise UserError(f"bad TCP port {port} in --serial '{spec}'")
    return "tcp", host, port


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another port") from None


def _wait_listening(em: Emulator, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if em.proc is not None and em.proc.poll() is not None:
            raise UserError(f"{em.describe()} exited with status {em.proc.returncode}")
        try:
            socket.create_connection((em.host, em.port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise UserError(f"{em.describe()} is not listening on {em.host}:{em.port}") from None
            time.sleep(0.05)


def emulate(project_dir: str | os.PathLike, serial: str = "tcp:127.0.0.1:5555", announce=print,
            duration: float | None = None) -> int:
    """Boot a built project's firmware and serve its UART until interrupted (or `duration` s).

    QEMU boards: QEMU with the UART on a TCP port (or this terminal's stdio). Renode
    boards: Renode with the UART on a server socket terminal (TCP only). The host
    board: the native firmware, bridged to the TCP port by this process. Connect with
    `tinyml-ptq run DIR --port socket://HOST:PORT` or any tool speaking the protocol.
    Returns the child's exit status (0 when stopped by us).
    """
    from ..target.boards import project_board
    from ..target.project_file import read_project

    project = Path(project_dir)
    meta = read_project(project)
    board = project_board(meta)
    if board.emulator is None and not board.is_host:
        raise UserError(f"board {board.name} has no emulator; flash it ('tinyml-ptq flash {project}') and "
                        "talk to it with 'tinyml-ptq run --port /dev/ttyACM0'")
    kind, host, port = parse_serial(serial)
    elf = project / "build" / "firmware.elf"
    if board.emulator == "renode" and kind == "stdio":
        raise UserError("Renode serves the board's UART on a TCP port only; use --serial tcp:127.0.0.1:PORT")
    what = {"qemu": f"QEMU {board.qemu_machine} (-icount shift=0)",
            "renode": f"Renode ({board.renode_platform}; DWT counts are instructions)"}.get(board.emulator,
                                                                                       "the host build")
    if kind == "stdio":
        em = Emulator(elf, board.qemu_machine, "stdio")
        _install_handlers()
        announce(f"running {elf} in {what} with the UART on this terminal; Ctrl-C to stop")
        proc = subprocess.Popen(_launcher() + em.command(), start_new_session=True)
        em.proc = proc
        with _live_lock:
            _live.add(proc)
        try:
            return em.wait(duration) or 0
        finally:
            em.close()
    _check_port_free(host, port)
    if board.is_host:
        return _serve_host(elf, host, port, announce, duration)
    with emulator_for(board, elf, "tcp", host=host, port=port) as em:
        announce(f"running {elf} in {what}; UART on tcp {host}:{port}")
        announce(f"connect with: socket://{host}:{port}   e.g. tinyml-ptq run {project} --port "
                 f"socket://{host}:{port} --data DATA")
        announce("Ctrl-C to stop")
        status = em.wait(duration)
        if status is not None:
            raise UserError(f"{em.describe()} stopped unexpectedly with status {status}")
        return 0


def _serve_host(elf: Path, host: str, port: int, announce, duration: float | None) -> int:
    """The host build speaks on stdin/stdout: bridge it to one TCP client at a time."""
    import select

    with Emulator(elf, None, "stdio") as em, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen(1)
        announce(f"running {elf} (host build); its stdin/stdout bridged to tcp {host}:{port}")
        announce(f"connect with: socket://{host}:{port}")
        announce("Ctrl-C to stop")
        out_fd, in_fd = em.proc.stdout.fileno(), em.proc.stdin.fileno()
        client = None
        end = None if duration is None else time.monotonic() + duration
        try:
            while end is None or time.monotonic() < end:
                watch = [server, out_fd] + ([client] if client else [])
                ready, _, _ = select.select(watch, [], [], 0.2)
                if em.proc.poll() is not None:
                    raise UserError(f"{em.describe()} exited with status {em.proc.returncode}")
                for r in ready:
                    if r is server:
                        conn, _ = server.accept()
                        if client:
                            client.close()
                        client = conn
                    elif r is out_fd:
                        data = os.read(out_fd, 65536)
                        if client:
                            try:
                                client.sendall(data)
                            except OSError:
                                client.close()
                                client = None
                    else:
                        data = client.recv(65536) if client else b""
                        if not data:
                            client.close()
                            client = None
                        else:
                            os.write(in_fd, data)
        finally:
            if client:
                client.close()
    return 0
