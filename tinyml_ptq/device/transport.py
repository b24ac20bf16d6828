"""Byte-stream transports to a device: what `DeviceClient` reads and writes.

A transport has three methods:

    write(data)         send all bytes
    read(timeout)       the bytes available now (waiting up to `timeout` seconds for
                        the first one); b"" if none came
    close()

Implementations: a child process's stdin/stdout (QEMU with `-serial stdio`, or the
host build of the firmware), a TCP socket (`socket://HOST:PORT`, also written
`tcp:HOST:PORT`; QEMU's TCP chardev, `tinyml-ptq emulate`, a serial-to-TCP bridge),
and anything pyserial's `serial_for_url` opens (`/dev/ttyACM0`, `COM3`,
`rfc2217://HOST:PORT`, `loop://`...).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
from pathlib import Path

from ..core.errors import UserError
from .protocol import DeviceError


class Transport:
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProcessTransport(Transport):
    """The stdin/stdout of a running child process (which the caller owns and stops)."""

    def __init__(self, proc: subprocess.Popen, describe=None):
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("process needs stdin=PIPE and stdout=PIPE")
        self.proc = proc
        self._describe = describe or (lambda: f"process {proc.pid}")
        self._out = proc.stdout.fileno()
        self._in = proc.stdin.fileno()

    def _gone(self) -> DeviceError:
        try:
            status = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            status = None
        how = f"exited with status {status}" if status is not None else "closed its output"
        return DeviceError(f"{self._describe()} {how}")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._in, view)
            except (BrokenPipeError, OSError):
                raise self._gone() from None
            view = view[n:]

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._out], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        data = os.read(self._out, 65536)
        if not data:
            raise self._gone()
        return data


class SocketTransport(Transport):
    """A TCP connection (QEMU's `-serial tcp:...` chardev, `tinyml-ptq emulate`, ser2net...)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 10.0):
        # One attempt: a refused connection is reported at once (waiting for an emulator
        # that is still starting is Emulator.transport()'s job).
        self.address = (host, port)
        try:
            self.sock = socket.create_connection(self.address, timeout=connect_timeout)
        except OSError as exc:
            raise DeviceError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise DeviceError(f"connection to {self.address[0]}:{self.address[1]} lost: {exc}") from None

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise DeviceError(f"connection to {self.address[0]}:{self.address[1]} lost: {exc}") from None
        if not data:
            raise DeviceError(f"connection to {self.address[0]}:{self.address[1]} closed by the other end")
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialTransport(Transport):
    """A pyserial port: a device path, COMn, or any pyserial URL (rfc2217://, loop://...)."""

    def __init__(self, url: str, baudrate: int = 115200):
        import serial

        self.url = url
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=10)
        except (serial.SerialException, ValueError) as exc:
            raise UserError(f"cannot open serial port {url}: {exc}") from None
        try:  # a board may reset when the port opens; what it printed before is not ours
            self.port.reset_input_buffer()
        except Exception:
            pass

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialException as exc:
            raise DeviceError(f"write to {self.url} failed: {exc}") from None

    def read(self, timeout: float) -> bytes:
        import serial

        try:
            self.port.timeout = max(timeout, 0.0)
            first = self.port.read(1)
            if not first:
                return b""
            self.port.timeout = 0
            waiting = self.port.in_waiting
            return first + (self.port.read(waiting) if waiting else b"")
        except serial.SerialException as exc:
            raise DeviceError(f"read from {self.url} failed: {exc}") from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass


def parse_tcp(url: str) -> tuple[str, int] | None:
    """(host, port) of `socket://HOST:PORT` or `tcp:HOST:PORT`, else None."""
    for prefix in ("socket://", "tcp://", "tcp:"):
        if url.startswith(prefix):
            rest = url[len(prefix):].split("?", 1)[0].rstrip("/")
            host, sep, port = rest.rpartition(":")
            if not sep or not port.isdigit() or not host:
                raise UserError(f"bad address '{url}'; write it as socket://HOST:PORT")
            return host.strip("[]"), int(port)
    return None


def open_port(url: str, baudrate: int = 115200) -> Transport:
    """A transport for what the user typed after --port."""
    tcp = parse_tcp(url)
    if tcp is not None:
        return SocketTransport(*tcp)
    if "://" not in url and not Path(url).exists() and not url.upper().startswith("COM"):
        raise UserError(f"serial port {url} does not exist; give a device path (/dev/ttyACM0), "
                        "socket://HOST:PORT or another pyserial URL")
    return SerialTransport(url, baudrate)
