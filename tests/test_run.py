"""The run stage on real firmware: QEMU (mps2-an386, -icount shift=0) and the host build.

Every output is checked against the TFLM reference by `run` itself; these tests
check that it reports what it measured, that workers do not change results,
that a faulting firmware names the sample, and that no QEMU outlives a run.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.protocol import DeviceFault
from tinyml_ptq.device.run import run

from conftest import AD01_MODEL, SHARED_MODELS, default_sigint, our_qemus

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
INSNS_PER_TICK = 40  # MPS2 SysTick at 25 MHz under -icount shift=0: one tick per 40 instructions


@pytest.mark.slow
@pytest.mark.parametrize("board", [pytest.param("mps2-an386", marks=needs_qemu), "host"])
def test_run_ad01_bit_exact(run_projects, ad01_data, board, tmp_path, no_qemu_left):
    project = run_projects.get("ad01", board)
    result = run(project, ad01_data, json_out=tmp_path / "r.json", save_outputs=tmp_path / "out.npy")
    assert result.exact == 1.0 and result.mismatches == []
    assert result.samples == 24 and result.board == board
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"schema_version", "board", "samples", "accuracy", "exact", "latency", "memory"}
    assert set(data["accuracy"]) == {"device", "reference"} and data["accuracy"]["device"] is None
    assert set(data["latency"]) == {"unit", "mean", "min", "max", "per_op"}
    assert set(data["memory"]) == {"flash_bytes", "ram_bytes", "arena_bytes"}
    assert data["exact"] == 1.0
    per_op = data["latency"]["per_op"]
    assert [p["index"] for p in per_op] == list(range(10))
    assert {p["op"] for p in per_op} == {"FULLY_CONNECTED"}
    assert 0 < data["latency"]["min"] <= data["latency"]["mean"] <= data["latency"]["max"]
    assert data["memory"]["arena_bytes"] > 0 and data["memory"]["flash_bytes"] > 270_000  # AD01 weights
    saved = np.load(tmp_path / "out.npy")
    assert saved.dtype == np.int8 and saved.shape == (24, 640)
    assert np.array_equal(saved, result.outputs)
    if board == "host":
        assert data["latency"]["unit"] == "ns"
    else:
        # Counts differ between samples by the kernels' data-dependent branches (clamps,
        # rounding); that a sample's count repeats is checked by the two-worker test.
        assert data["latency"]["unit"] == "instructions"
        assert sum(p["mean"] for p in per_op) == pytest.approx(data["latency"]["mean"], rel=0.01)
        assert data["memory"]["ram_bytes"] >= data["memory"]["arena_bytes"]


@pytest.mark.slow
@pytest.mark.parametrize("board", [pytest.param("mps2-an386", marks=needs_qemu), "host"])
def test_run_dense_classifier_accuracy_matches_reference(run_projects, dense_data, board, no_qemu_left):
    project = run_projects.get("dense", board)
    result = run(project, dense_data)
    assert result.exact == 1.0 and result.samples == 40
    assert result.accuracy_device is not None
    assert result.accuracy_device == result.accuracy_reference
    labels = np.load(dense_data)["y"]
    preds = result.outputs.reshape(40, -1).argmax(axis=1)
    assert result.accuracy_device == pytest.approx(float(np.mean(preds == labels)))


@pytest.mark.slow
@needs_qemu
def test_two_workers_give_the_same_results_as_one(run_projects, ad01_data, no_qemu_left):
    project = run_projects.get("ad01", "mps2-an386")
    one = run(project, ad01_data, limit=12)
    two = run(project, ad01_data, limit=12, workers=2)
    assert two.workers == 2
    assert np.array_equal(one.outputs, two.outputs)
    assert one.exact == two.exact == 1.0
    a, b = one.to_dict(), two.to_dict()
    assert a["memory"] == b["memory"] and a["samples"] == b["samples"] and a["accuracy"] == b["accuracy"]
    # Instruction counts agree to the SysTick resolution (the tick phase at each INVOKE differs).
    assert np.abs(np.array(one.latencies) - np.array(two.latencies)).max() <= INSNS_PER_TICK
    for p, q in zip(a["latency"]["per_op"], b["latency"]["per_op"]):
        assert (p["index"], p["op"]) == (q["index"], q["op"])
        assert abs(p["mean"] - q["mean"]) <= INSNS_PER_TICK


@pytest.mark.slow
@needs_qemu
def test_int8_samples_are_sent_as_they_are_and_cli_writes_json(run_projects, tmp_path, capsys, no_qemu_left):
    project = run_projects.get("ad01", "mps2-an386")
    x = np.random.default_rng(3).integers(-128, 128, size=(5, 640)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    status = main(["run", str(project), "--data", str(tmp_path / "x.npy"), "--json", str(tmp_path / "r.json"),
                   "--save-outputs", str(tmp_path / "o.npy")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "exact     1.0000 (5/5" in out and "instructions" in out and "QEMU" in out
    assert json.loads((tmp_path / "r.json").read_text())["samples"] == 5

    from tinyml_ptq.interpreters.reference import ReferenceInterpreter

    ref = ReferenceInterpreter(run_projects.model("ad01").read_bytes())
    expected = np.stack([ref.invoke(s).reshape(-1) for s in x])
    assert np.array_equal(np.load(tmp_path / "o.npy").reshape(5, -1), expected)


@pytest.mark.slow
@pytest.mark.parametrize("board", [pytest.param("mps2-an386", marks=needs_qemu), "host"])
def test_faulting_firmware_names_the_sample(run_projects, ad01_data, board, capsys, no_qemu_left):
    project = run_projects.get("ad01", board, fault=True)
    with pytest.raises(DeviceFault) as exc:
        run(project, ad01_data, limit=3)
    assert exc.value.sample == 0
    assert "device faulted on sample 0" in str(exc.value) and "pc=0x" in str(exc.value)
    if board != "host":
        assert exc.value.registers["bfar"] == 0xF0000000  # the FAULT_TEST image reads there
    status = main(["run", str(project), "--data", str(ad01_data), "--limit", "2", "--workers", "2"])
    err = capsys.readouterr().err
    assert status == 2 and "error: device faulted on sample" in err


@pytest.mark.slow
@needs_qemu
def test_interrupted_run_leaves_no_qemu(run_projects, ad01_data, no_qemu_left):
    project = run_projects.get("ad01", "mps2-an386")
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "tinyml_ptq", "run", str(project), "--data", str(ad01_data),
                                 "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=default_sigint)
        try:
            deadline = time.monotonic() + 60
            while len(our_qemus(run_projects.root)) < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert our_qemus(run_projects.root), "run did not start its emulators"
            proc.send_signal(sig)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode != 0, err
        assert our_qemus(run_projects.root) == [], f"QEMU survived {sig.name}"


@pytest.mark.slow
def test_user_errors(run_projects, ad01_data, tmp_path):
    project = run_projects.get("dense", "host")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 7), np.float32))
    with pytest.raises(UserError, match="shape"):
        run(project, bad)
    copy = tmp_path / "unbuilt"
    shutil.copytree(project, copy)
    shutil.rmtree(copy / "build")
    with pytest.raises(UserError, match="tinyml-ptq build"):
        run(copy, ad01_data)
    with pytest.raises(UserError, match="one device"):
        run(project, ad01_data, port="socket://127.0.0.1:9", workers=2)


def test_flash_refuses_emulated_boards_and_missing_tools(tmp_path):
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.target.flash import flash

    ad01 = AD01_MODEL
    qemu_project = tmp_path / "qemu"
    generate(ad01, qemu_project, board="mps2-an386")
    with pytest.raises(UserError, match="not real hardware"):
        flash(qemu_project)
    hw = tmp_path / "nucleo"
    generate(ad01, hw, board="nucleo-l4r5zi")
    with pytest.raises(UserError, match="build the project first"):
        flash(hw)
    (hw / "build").mkdir()
    (hw / "build" / "firmware.elf").write_bytes(b"\x7fELF")
    start = time.monotonic()
    for probe in ("pyocd", "openocd"):
        try:
            flash(hw, probe=probe)
        except UserError as exc:  # not installed, or no probe attached
            assert "not found" in str(exc) or "probe" in str(exc)
        else:  # pragma: no cover - only with a board attached
            pass
    assert time.monotonic() - start < 120


def test_summary_says_when_the_firmware_reports_no_per_op_profile():
    """A TFLM release build times no operator: the summary says so instead of listing zeros."""
    from tinyml_ptq.device.run import OpLatency, RunResult

    def result(per_op_means):
        return RunResult(board="mps2-an386", samples=1, accuracy_device=None, accuracy_reference=None, exact=1.0,
                         latency_unit="instructions", latency_mean=1000.0, latency_min=1000, latency_max=1000,
                         per_op=[OpLatency(i, "CONV_2D", m) for i, m in enumerate(per_op_means)],
                         flash_bytes=None, ram_bytes=None, arena_bytes=0)

    silent = result([0.0, 0.0]).summary()
    assert "per-operator profile: none reported" in silent and "op   0" not in silent
    profiled = result([600.0, 400.0]).summary()
    assert "none reported" not in profiled and "op   1 CONV_2D" in profiled and "40.0%" in profiled


def test_a_refused_connection_is_reported_after_one_attempt(run_projects, dense_data, monkeypatch, capsys):
    import socket

    from tinyml_ptq.device.emulator import free_port

    project = run_projects.get("dense", "host")
    attempts = []
    real_connect = socket.create_connection

    def counted(*args, **kwargs):
        attempts.append(args[0])
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counted)
    port = free_port()  # nothing listens there
    assert main(["run", str(project), "--data", str(dense_data), "--port", f"socket://127.0.0.1:{port}"]) == 2
    assert "Connection refused" in capsys.readouterr().err
    assert attempts == [("127.0.0.1", port)]


def test_run_from_another_folder_after_the_model_moved(run_projects, dense_data, tmp_path, monkeypatch):
    """The project keeps its own copy of the reference model: a relative path given to generate
    and a model moved since do not matter."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.target.build import build

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(run_projects.model("dense"), work / "dense.tflite")
    monkeypatch.chdir(work)
    generate("dense.tflite", "fw", board="host")
    build("fw")
    (work / "dense.tflite").rename(tmp_path / "moved.tflite")
    monkeypatch.chdir(tmp_path)
    result = run(work / "fw", dense_data)
    assert result.exact == 1.0 and result.samples == 40


def test_labels_outside_the_classes_are_refused_before_running(run_projects, dense_data, tmp_path, capsys):
    project = run_projects.get("dense", "host")
    data = np.load(dense_data)
    shifted = tmp_path / "shifted.npz"
    np.savez(shifted, x=data["x"], y=data["y"] + 1)  # 1..10 for a 10-class model
    assert main(["run", str(project), "--data", str(shifted)]) == 2
    assert "labels run from 1 to 10 but the model has 10 outputs" in capsys.readouterr().err
    as_floats = tmp_path / "floats.npz"
    np.savez(as_floats, x=data["x"], y=data["y"].astype(np.float64))  # as MLCommons ships them
    result = run(project, as_floats)
    assert result.accuracy_device is not None and result.accuracy_device == result.accuracy_reference


def test_firmware_of_another_model_with_the_same_sizes_is_refused(run_projects, dense_data, tmp_path, capsys):
    """INFO carries the model's digest: a firmware built from another model whose input and
    output sizes match is named, not run and blamed on the data."""
    import tensorflow as tf

    from harness import convert_int8

    project = run_projects.get("dense", "host")
    tf.keras.utils.set_random_seed(4)
    hidden, out = tf.keras.layers.Dense(24, activation="relu"), tf.keras.layers.Dense(10)
    hidden.build((1, 12))
    out.build((1, 24))
    other = tmp_path / "other.tflite"  # same shapes (12 in, 10 out), other weights
    other.write_bytes(convert_int8(lambda x: out(hidden(x)), [(12,)]))
    assert main(["run", str(project), "--data", str(dense_data), "--model", str(other)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"error: the firmware \(\S+\) serves the model with digest 0x[0-9a-f]{8}, not the reference "
                     r"model \(0x[0-9a-f]{8}\); pass the model it was generated from with --model", err), err
    assert run(project, dense_data, model=run_projects.model("dense")).exact == 1.0


def test_a_model_with_two_inputs_runs_from_one_npz_per_input_arrays(tmp_path, capsys):
    """TFLM's simple_add_model (two 128x128 inputs) on the host board: x0 and x1 in one .npz."""
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.target.build import build

    model = SHARED_MODELS.parent / "tflm" / "simple_add_model.tflite"
    generate(model, tmp_path / "fw", board="host")
    build(tmp_path / "fw")
    rng = np.random.default_rng(3)
    x0, x1 = (rng.uniform(-4, 4, size=(5, 128, 128, 1)).astype(np.float32) for _ in range(2))
    np.savez(tmp_path / "both.npz", x0=x0, x1=x1)
    result = run(tmp_path / "fw", tmp_path / "both.npz", save_outputs=tmp_path / "sum.npy")
    assert result.samples == 5 and result.exact == 1.0
    # The device really added the two: dequantized, its sum is within rounding of x0 + x1.
    meta = json.loads((tmp_path / "fw" / "project.json").read_text())
    o = meta["outputs"][0]
    total = (np.load(tmp_path / "sum.npy").astype(np.float64) - o["zero_point"]) * o["scale"]
    assert np.abs(total - np.clip(x0 + x1, *((np.array([-128, 127]) - o["zero_point"]) * o["scale"]))).max() < 0.2
    np.savez(tmp_path / "one.npz", x0=x0)
    assert main(["run", str(tmp_path / "fw"), "--data", str(tmp_path / "one.npz")]) == 2
    assert "no array x1 (has: x0); the model has 2 inputs: save them as x0, x1" in capsys.readouterr().err
