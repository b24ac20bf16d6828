"""Hardware-in-the-loop path end to end, and what a bad line or a bad firmware does to it.

`tinyml-ptq emulate` serves the real firmware's UART on a TCP port, exactly as a
serial-to-TCP bridge would serve a real board; `run --port socket://...` drives
it. A fault-injecting TCP proxy between the two corrupts, drops and stalls bytes:
the run must then either give outputs identical to a clean run or stop with a
clear error, never a wrong output. Hung and faulting firmware give clear errors,
and no QEMU outlives a test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tinyml_ptq.device.emulator import Emulator, free_port
from tinyml_ptq.device.protocol import DeviceClient, DeviceError, DeviceFault, DeviceTimeout
from tinyml_ptq.device.run import prepare_inputs, run
from tinyml_ptq.device.transport import open_port

from conftest import default_sigint, our_qemus

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")]


@pytest.fixture(scope="module")
def clean_ad01(run_projects, ad01_data):
    """Reference result: AD01 on mps2-an386 through the emulator's stdio, nothing in between."""
    project = run_projects.get("ad01", "mps2-an386")
    result = run(project, ad01_data)
    assert result.exact == 1.0
    return project, result


class FaultyProxy:
    """A TCP proxy that corrupts and drops bytes (each with probability p) and stalls
    (with probability `stall` per byte passed on, for `stall_seconds`).

    forwarding=False turns it into a black hole: it accepts and swallows everything.
    """

    def __init__(self, upstream: tuple[str, int], corrupt: float = 0.0, drop: float = 0.0, stall: float = 0.0,
                 stall_seconds: tuple[float, float] = (0.3, 1.5), seed: int = 0):
        self.upstream = upstream
        self.reply_delay = 0.0  # seconds every device -> host chunk is held back (a slow line or host)
        self.corrupt, self.drop, self.stall, self.stall_seconds = corrupt, drop, stall, stall_seconds
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.forwarding = True
        self.counts = {"bytes": 0, "corrupted": 0, "dropped": 0, "stalls": 0}
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for src, dst, from_device in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, from_device), daemon=True).start()

    def _mangle(self, data: bytes) -> tuple[bytes, float]:
        with self.lock:
            arr = np.frombuffer(data, dtype=np.uint8).copy()
            flips = self.rng.random(len(arr)) < self.corrupt
            arr[flips] ^= self.rng.integers(1, 256, size=int(flips.sum()), dtype=np.uint8)
            keep = self.rng.random(len(arr)) >= self.drop
            stalls = self.rng.random() < 1.0 - (1.0 - self.stall) ** len(arr)
            pause = float(self.rng.uniform(*self.stall_seconds)) if stalls else 0.0
            self.counts["bytes"] += len(arr)
            self.counts["corrupted"] += int(flips.sum())
            self.counts["dropped"] += int((~keep).sum())
            self.counts["stalls"] += pause > 0
        return arr[keep].tobytes(), pause

    def _pump(self, src: socket.socket, dst: socket.socket, from_device: bool) -> None:
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if not self.forwarding:
                    continue
                data, pause = self._mangle(data)
                if from_device:
                    pause += self.reply_delay
                if pause:
                    time.sleep(pause)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


def start_emulate(project, port: int) -> tuple[subprocess.Popen, str]:
    """`tinyml-ptq emulate` in a subprocess; returns it and the URL it announced."""
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_ptq", "emulate", str(project), "--serial",
                             f"tcp:127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "socket://" in line:
            url = line[line.index("socket://"):].split()[0]
            return proc, url
    proc.kill()
    proc.wait()
    raise AssertionError(f"emulate did not announce its URL: {''.join(lines)}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> tuple[int, str]:
    """Signals the emulate process; its exit status and the rest of its stderr."""
    proc.send_signal(sig)
    try:
        status = proc.wait(timeout=20)
        return status, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_emulate_then_run_over_tcp_matches_the_emulator_run(clean_ad01, ad01_data, tmp_path, run_projects,
                                                            no_qemu_left):
    project, clean = clean_ad01
    proc, url = start_emulate(project, free_port())
    try:
        assert url.startswith("socket://127.0.0.1:")
        assert len(our_qemus(run_projects.root)) == 1
        first = run(project, ad01_data, port=url)
        assert first.exact == 1.0 and np.array_equal(first.outputs, clean.outputs)
        assert first.latency_unit == "instructions" and first.board == "mps2-an386"
        # A second client on the same running device (the CLI this time).
        out = subprocess.run([sys.executable, "-m", "tinyml_ptq", "run", str(project), "--data", str(ad01_data),
                              "--port", url, "--limit", "4", "--save-outputs", str(tmp_path / "o.npy")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "exact     1.0000 (4/4" in out.stdout
        assert np.array_equal(np.load(tmp_path / "o.npy"), clean.outputs[:4])
    finally:
        status, err = stop(proc, signal.SIGINT)
    assert status == 0 and err.strip().endswith("stopped")  # Ctrl-C is the normal way to stop it
    assert our_qemus(run_projects.root) == []


def test_emulate_host_build_bridged_to_tcp(run_projects, dense_data):
    project = run_projects.get("dense", "host")
    proc, url = start_emulate(project, free_port())
    try:
        result = run(project, dense_data, port=url)
        assert result.exact == 1.0 and result.latency_unit == "ns"
    finally:
        stop(proc)
    assert subprocess.run(["pgrep", "-f", str(project / "build")], capture_output=True).stdout == b""


def test_fault_injection_never_gives_a_wrong_output(clean_ad01, ad01_data, no_qemu_left):
    project, clean = clean_ad01
    limit = 10
    with Emulator(project / "build" / "firmware.elf", "mps2-an386", serial="tcp") as em:
        proxy = FaultyProxy((em.host, em.port), corrupt=1 / 2000, drop=1 / 2000, stall=1 / 20000, seed=11)
        try:
            try:
                result = run(project, ad01_data, limit=limit, port=proxy.url, timeout=1.0, invoke_timeout=5.0)
            except DeviceError as exc:  # allowed: a clear error, never a wrong answer
                assert "sample" in str(exc) or "reply" in str(exc), str(exc)
                print(f"fault injection stopped the run: {exc}; proxy {proxy.counts}")
            else:
                assert np.array_equal(result.outputs, clean.outputs[:limit])
                assert result.exact == 1.0
                assert result.latencies == pytest.approx(clean.latencies[:limit], abs=40)
                print(f"fault injection: run completed identical to the clean run; proxy {proxy.counts}")
        finally:
            proxy.close()
    assert proxy.counts["corrupted"] + proxy.counts["dropped"] > 0, "the proxy injected nothing"


def test_a_device_that_gets_slower_is_waited_for_up_to_the_timeout(clean_ad01, ad01_data, no_qemu_left):
    """Replies that turn slow mid-run (a loaded machine): the adaptive wait learned from the fast
    ones may cut the first attempt short, but the run completes, identical to the clean one."""
    project, clean = clean_ad01
    with Emulator(project / "build" / "firmware.elf", "mps2-an386", serial="tcp") as em:
        proxy = FaultyProxy((em.host, em.port))
        try:
            client = DeviceClient(open_port(proxy.url), timeout=3.0, invoke_timeout=3.0)
            info = client.info()
            x = prepare_inputs([np.load(ad01_data)["x"][:6]], info)
            outputs = [client.invoke(x[i].tobytes()).output for i in range(3)]  # fast: the wait adapts
            proxy.reply_delay = 0.6  # 20x slower than those replies, well within --timeout
            outputs += [client.invoke(x[i].tobytes()).output for i in range(3, 6)]
            client.transport.close()
        finally:
            proxy.close()
    assert [bytes(o) for o in outputs] == [bytes(o) for o in clean.outputs[:6]]
    assert client.stats.retries > 0, "the delay never outlasted the adaptive wait: the test tests nothing"


def test_heavy_corruption_stops_with_a_clear_error(clean_ad01, ad01_data, no_qemu_left):
    project, _ = clean_ad01
    with Emulator(project / "build" / "firmware.elf", "mps2-an386", serial="tcp") as em:
        proxy = FaultyProxy((em.host, em.port), corrupt=0.05, seed=5)
        try:
            with pytest.raises(DeviceError, match="attempts|no reply") as exc:
                run(project, ad01_data, limit=2, port=proxy.url, timeout=0.3, invoke_timeout=2.0, retries=3)
        finally:
            proxy.close()
    assert "sample" in str(exc.value) or "INFO" in str(exc.value) or "OP_NAMES" in str(exc.value)


def test_stalled_line_times_out_clearly(clean_ad01, ad01_data, no_qemu_left):
    project, _ = clean_ad01
    with Emulator(project / "build" / "firmware.elf", "mps2-an386", serial="tcp") as em:
        proxy = FaultyProxy((em.host, em.port))
        proxy.forwarding = False  # the line goes dead
        try:
            start = time.monotonic()
            with pytest.raises(DeviceTimeout, match="no reply to INFO"):
                run(project, ad01_data, port=proxy.url, timeout=0.5)
            assert time.monotonic() - start < 10
        finally:
            proxy.close()


HANG_C = r"""
void reset(void);
__attribute__((section(".vectors"), used)) const void *vectors[2] = {(void *)0x20010000, (void *)reset};
void reset(void) { for (;;) { __asm__ volatile("nop"); } }
"""


def test_hung_firmware_times_out_clearly(run_projects, ad01_data, tmp_path, no_qemu_left):
    """A firmware that boots but never answers, run through the normal emulator path."""
    project = tmp_path / "hung"
    shutil.copytree(run_projects.get("ad01", "mps2-an386"), project)
    (tmp_path / "hang.c").write_text(HANG_C)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-nostartfiles", "-e", "reset",
                    "-Wl,--section-start=.vectors=0x0", "-Wl,-Ttext=0x400", "-o",
                    str(project / "build" / "firmware.elf"), str(tmp_path / "hang.c")], check=True)
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no reply to INFO") as exc:
        run(project, ad01_data, timeout=0.5)
    assert time.monotonic() - start < 15
    assert "hung" in str(exc.value)
    assert our_qemus(tmp_path) == []


def test_an_emulator_starved_for_longer_than_three_timeouts_is_waited_for(clean_ad01, ad01_data, no_qemu_left):
    """A loaded machine can stop an emulator for seconds. Stopped (SIGSTOP) for 2.5 s, over 3 reply
    timeouts of 0.5 s but under 8, it is not declared hung, and every output is still exact."""
    project, _ = clean_ad01
    stopped = []

    def stall_the_emulator():
        deadline = time.monotonic() + 60
        while not stopped and time.monotonic() < deadline:
            for line in our_qemus(project):
                pid = int(line.split()[0])
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
                time.sleep(2.5)
                os.kill(pid, signal.SIGCONT)
                return
            time.sleep(0.05)

    staller = threading.Thread(target=stall_the_emulator)
    staller.start()
    try:
        result = run(project, ad01_data, timeout=0.5)
    finally:
        staller.join()
    assert stopped and result.exact == 1.0


def test_fault_frame_over_tcp(run_projects, no_qemu_left):
    project = run_projects.get("ad01", "mps2-an386", fault=True)
    with Emulator(project / "build" / "firmware.elf", "mps2-an386", serial="tcp") as em:
        transport = em.transport()
        try:
            client = DeviceClient(transport)
            info = client.info()
            with pytest.raises(DeviceFault) as exc:
                client.invoke(bytes(info.input_size))
        finally:
            transport.close()
    regs = exc.value.registers
    assert regs["bfar"] == 0xF0000000 and regs["cfsr"] & (1 << 9)  # precise BusFault at the address
    assert "precise data bus error" in str(exc.value)


def test_emulator_is_killed_when_the_parent_dies(run_projects, tmp_path):
    """Even a SIGKILLed parent leaves no QEMU behind (PR_SET_PDEATHSIG)."""
    project = run_projects.get("ad01", "mps2-an386")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_ptq", "emulate", str(project), "--serial",
                             f"tcp:127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 30
        while not our_qemus(run_projects.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert our_qemus(run_projects.root)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while our_qemus(run_projects.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert our_qemus(run_projects.root) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
