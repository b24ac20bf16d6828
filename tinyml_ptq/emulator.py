"""Start the firmware where it runs without hardware: QEMU for the MPS2 boards, or
the native executable for the host board; and make sure it stops.

    qemu-system-arm -machine M -nographic -monitor none -icount shift=0 -kernel ELF
        -serial stdio                              (UART on our pipes), or
        -serial tcp:HOST:PORT,server=on,wait=off   (UART on a TCP port)

`-icount shift=0` makes the virtual clock advance 1 ns per guest instruction, so
the firmware's SysTick counts instructions, deterministically.

Every child runs in its own process group and is registered here; it is killed
(SIGTERM, then SIGKILL) when the `Emulator` is closed, on interpreter exit
(atexit), on SIGTERM/SIGHUP (turned into SystemExit so `finally` blocks run) and
Ctrl-C (KeyboardInterrupt), and, through PR_SET_PDEATHSIG, if this process dies
without cleaning up.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .errors import UserError
from .protocol import DeviceError
from .transport import ProcessTransport, SocketTransport, Transport

QEMU = "qemu-system-arm"

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
        if machine is not None and shutil.which(QEMU) is None:
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
            serial = f"tcp:{self.host}:{self.port},server=on,wait=off"
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
