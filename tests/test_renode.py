"""The STM32 boards under the real Renode: each firmware is the one that goes on the board.

Renode comes from --renode / $RENODE / PATH, or here from ../shared/tools/renode beside
the checkout; without one these tests skip with one line saying how to get it. Each
firmware is built once per session and each run starts one Renode per worker.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.emulator import RENODE_QUANTUM_S, find_renode, free_port, set_renode
from tinyml_ptq.device.protocol import DeviceFault, DeviceTimeout
from tinyml_ptq.device.run import run
from tinyml_ptq.target.boards import get_board

from conftest import AD01_MODEL, DIGITS_DIR, SHARED_MODELS, default_sigint

pytestmark = pytest.mark.slow

RENODE_BOARDS = ["stm32f4-disco", "stm32f746-disco", "nucleo-l4r5zi"]
KWS_MODEL = SHARED_MODELS / "kws_ref_model_int8.tflite"


def our_renodes() -> list[str]:
    """Renode processes this test process's toolkit started (their script lives in a
    tinyml-ptq-renode-* folder of our temp folder, which is per worker under pytest-xdist)."""
    out = subprocess.run(["pgrep", "-af", "Renode.exe"], capture_output=True, text=True).stdout
    ours = str(Path(tempfile.gettempdir()) / "tinyml-ptq-renode-")
    return [line for line in out.splitlines() if ours in line]


@pytest.fixture
def no_renode_left(renode):
    assert our_renodes() == []
    yield
    assert our_renodes() == [], "a Renode process survived the test"


class Projects:
    """(model, board, make args) -> generated and built project, built once per session."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple, Path] = {}

    def get(self, model: Path, board: str, *make_args: str) -> Path:
        key = (model, board, make_args)
        if key not in self.cache:
            from tinyml_ptq.compiler.project import generate
            from tinyml_ptq.target.build import build

            project = self.root / f"{model.stem}-{board}{'-'.join(('',) + make_args)}".replace("=", "")
            generate(model, project, board=board)
            build(project, make_args=list(make_args) or None)
            self.cache[key] = project
        return self.cache[key]


@pytest.fixture(scope="session")
def projects(tmp_path_factory, renode) -> Projects:
    return Projects(tmp_path_factory.mktemp("renode-projects"))


@pytest.fixture(scope="session")
def digits_runs(projects, digits_int8_tflite):
    """The digits example's eval set on each Renode board and on mps2-an386 (QEMU), run once."""
    data = DIGITS_DIR / "eval.npz"
    boards = RENODE_BOARDS + (["mps2-an386"] if shutil.which("qemu-system-arm") else [])
    return {board: run(projects.get(digits_int8_tflite, board), data) for board in boards}


@pytest.mark.parametrize("board", RENODE_BOARDS)
def test_digits_bit_exact_under_renode(digits_runs, board, no_renode_left):
    result = digits_runs[board]
    assert result.board == board and result.samples == 360
    assert result.exact == 1.0 and result.mismatches == []
    assert result.accuracy_device == result.accuracy_reference
    assert result.accuracy_device > 0.9  # the example's model, not noise
    assert result.latency_unit == "instructions" and result.emulator == "renode"
    assert "under Renode" in result.summary()
    assert result.flash_bytes <= get_board(board).flash_bytes


def test_instruction_counts_agree_with_qemu(digits_runs):
    """Same kernels, same compiler flags, so the same instructions per inference. QEMU counts them in
    40-instruction SysTick steps; Renode's DWT follows virtual time, which moves once per quantum
    (840 instructions at 168 MIPS), so each Renode count is a whole number of quanta within one
    quantum of the true count."""
    if "mps2-an386" not in digits_runs:
        pytest.skip("qemu-system-arm not installed")
    qemu, renode = digits_runs["mps2-an386"], digits_runs["stm32f4-disco"]
    assert np.array_equal(qemu.outputs, renode.outputs)
    step = round(RENODE_QUANTUM_S * get_board("stm32f4-disco").clock_hz)
    assert all(t % step == 0 for t in renode.latencies)
    diff = np.array(renode.latencies) - np.array(qemu.latencies)
    assert np.abs(diff).max() < step + 40, diff
    assert abs(renode.latency_mean - qemu.latency_mean) < step
    for q, r in zip(qemu.per_op, renode.per_op):
        assert q.op == r.op and abs(q.mean - r.mean) < step + 40, (q, r)


def test_kws_bit_exact_on_stm32f4(projects, tmp_path, no_renode_left):
    project = projects.get(KWS_MODEL, "stm32f4-disco")
    rng = np.random.default_rng(5)
    data = tmp_path / "kws.npy"
    np.save(data, rng.integers(-128, 128, size=(8, 49, 10, 1), dtype=np.int8))
    result = run(project, data, json_out=tmp_path / "run.json")
    assert result.exact == 1.0 and result.samples == 8
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["latency"]["unit"] == "instructions" and saved["board"] == "stm32f4-disco"
    assert saved["latency"]["min"] > 1_000_000  # KWS is millions of instructions


def test_emulate_on_tcp_then_run_over_the_port(projects, digits_int8_tflite, digits_runs, tmp_path, no_renode_left):
    project = projects.get(digits_int8_tflite, "stm32f4-disco")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_ptq", "emulate", str(project), "--serial",
                             f"tcp:127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        lines = []
        while not any("Ctrl-C" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"emulate exited: {''.join(lines)}"
            lines.append(line)
        assert "Renode" in lines[0] and f"tcp 127.0.0.1:{port}" in lines[0]
        assert len(our_renodes()) == 1
        out = subprocess.run([sys.executable, "-m", "tinyml_ptq", "run", str(project), "--data",
                              str(DIGITS_DIR / "eval.npz"), "--limit", "40", "--port", f"socket://127.0.0.1:{port}",
                              "--save-outputs", str(tmp_path / "o.npy")], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "exact     1.0000 (40/40" in out.stdout
        assert np.array_equal(np.load(tmp_path / "o.npy").reshape(40, -1), digits_runs["stm32f4-disco"].outputs[:40])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            status = proc.wait(timeout=30)
        finally:  # an emulate that ignored Ctrl-C must not outlive the test, nor its Renode
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
    assert status == 0


HANG_C = r"""
void reset(void);
__attribute__((section(".vectors"), used)) const void *vectors[2] = {(void *)0x20010000, (void *)reset};
void reset(void) { for (;;) { __asm__ volatile("nop"); } }
"""


def test_hung_firmware_times_out_clearly(projects, digits_int8_tflite, tmp_path, no_renode_left):
    project = tmp_path / "hung"
    shutil.copytree(projects.get(digits_int8_tflite, "stm32f4-disco"), project)
    (tmp_path / "hang.c").write_text(HANG_C)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-nostartfiles", "-e", "reset",
                    "-Wl,--section-start=.vectors=0x08000000", "-Wl,-Ttext=0x08000400", "-o",
                    str(project / "build" / "firmware.elf"), str(tmp_path / "hang.c")], check=True)
    with pytest.raises(DeviceTimeout, match="no reply to INFO") as exc:
        run(project, DIGITS_DIR / "eval.npz", timeout=0.5)
    assert "hung" in str(exc.value)


def test_faulting_firmware_sends_the_fault_frame(projects, digits_int8_tflite, capsys, no_renode_left):
    # FAULT_TEST=2: an undefined instruction; Renode reads an unmapped address as 0 instead of a bus error.
    project = projects.get(digits_int8_tflite, "stm32f4-disco", "FAULT_TEST=2")
    with pytest.raises(DeviceFault) as exc:
        run(project, DIGITS_DIR / "eval.npz", limit=2)
    regs = exc.value.registers
    assert regs["cfsr"] == 1 << 16  # UNDEFINSTR (Renode leaves HFSR.FORCED at 0)
    assert main(["run", str(project), "--data", str(DIGITS_DIR / "eval.npz"), "--limit", "2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: device faulted on sample 0")
    assert "undefined instruction" in errors[0]


def test_renode_that_cannot_start_gives_one_error_line(projects, digits_int8_tflite, tmp_path, capsys,
                                                       no_renode_left):
    project = tmp_path / "broken"
    shutil.copytree(projects.get(digits_int8_tflite, "stm32f4-disco"), project)
    (project / "build" / "firmware.elf").write_bytes(b"\x7fELF not really")
    started = time.monotonic()
    assert main(["run", str(project), "--data", str(DIGITS_DIR / "eval.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Renode could not start stm32f4-disco: "), err
    assert "LoadELF" in err[0]
    assert time.monotonic() - started < 60


def test_renode_is_found_by_option_then_environment(renode, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RENODE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="Renode not found; install Renode from https://renode.io"):
        find_renode()
    monkeypatch.setenv("RENODE", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"\$RENODE .*nowhere: no Renode launcher there"):
        find_renode()
    monkeypatch.setenv("RENODE", str(renode.parent))  # the install folder will do
    assert find_renode() == renode
    try:
        set_renode(tmp_path)  # --renode comes first
        with pytest.raises(UserError, match="--renode"):
            find_renode()
    finally:
        set_renode(None)


def test_deploy_on_stm32f4_reports_renode(renode, tmp_path, no_renode_left):
    out = tmp_path / "deploy"
    assert main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "--eval-samples", "60", "--board", "stm32f4-disco",
                 "--renode", str(renode), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["board"]["name"] == "stm32f4-disco" and report["board"]["emulator"] == "renode"
    assert report["summary"]["exact"] == 1.0 and report["summary"]["latency_unit"] == "instructions"
    assert "Run under Renode" in (out / "report.html").read_text()


def test_bench_and_the_tflm_route_on_a_renode_board(renode, tflm_dir, tmp_path, no_renode_left):
    """bench on stm32f4-disco: TFLM (reference, CMSIS-NN) and ours (reference, DSP) built for the
    STM32F407 and run under Renode, every output bit-exact with the TFLM reference."""
    out = tmp_path / "bench"
    assert main(["bench", "-o", str(out), "--model", str(AD01_MODEL), "--board", "stm32f4-disco", "--samples", "1",
                 "--no-stages", "--tflm-dir", str(tflm_dir), "--renode", str(renode)]) == 0
    rows = json.loads((out / "results.json").read_text())["models"]
    assert [f"{r['runtime']}/{r['kernels']}" for r in rows] == \
        ["tflm/reference", "tflm/cmsis_nn", "native/reference", "native/dsp"]
    assert all(r["board"] == "stm32f4-disco" and r["exact"] == 1.0 for r in rows)


def test_tflm_arena_measured_under_renode(renode, tflm_dir, tmp_path, no_renode_left):
    """The TFLM arena need measured on nucleo-l4r5zi under Renode equals the derivation (+ its 16 B)."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.device.arena_measure import measure_tflm_arena

    project = tmp_path / "p"
    generated = generate(AD01_MODEL, project, board="nucleo-l4r5zi", runtime="tflm", kernels="reference")
    need = measure_tflm_arena(project, tflm_dir)
    assert need <= generated.arena_bytes <= need + 16


def test_boards_lists_emulator_and_verification(capsys):
    assert main(["boards", "--json"]) == 0
    listed = {b["name"]: b for b in json.loads(capsys.readouterr().out)}
    assert {name: listed[name]["emulator"] for name in RENODE_BOARDS} == dict.fromkeys(RENODE_BOARDS, "renode")
    assert listed["mps2-an386"]["emulator"] == "qemu" and listed["host"]["emulator"] is None
    assert all(listed[name]["verification"] == "emulated in tests" for name in RENODE_BOARDS)
    assert main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("nucleo-l4r5zi") and "emulator renode" in line for line in lines)
