"""deploy: the digits example end to end on emulated mps2-an386, artefact reuse, failures naming the stage."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core import json_files

from conftest import DIGITS_DIR

pytestmark = pytest.mark.slow

STAGE_FILES = ("digits_cnn_int8.tflite", "quantize_report.json", "firmware/project.json",
               "firmware/build/firmware.elf", "build.json", "run.json", "report.json", "report.html", "manifest.json")


def test_deploy_digits_end_to_end(digits_deployed):
    out = digits_deployed.out_dir
    for rel in STAGE_FILES:
        assert (out / rel).is_file(), rel
    assert json.loads((out / "report.json").read_text())["schema_version"] == 1
    report = json_files.read(out / "report.json", "report", "")
    assert report == digits_deployed.report
    assert [s["name"] for s in report["stages"]] == ["quantize", "generate", "build", "run"]
    assert not any(s["cached"] for s in report["stages"]), "a fresh folder has nothing to reuse"

    # The stage reports are merged unchanged: each equals the file its stage wrote.
    assert report["quantize"] == json_files.read(out / "quantize_report.json", "quantize_report", "")
    assert report["build"] == json_files.read(out / "build.json", "build", "")
    run_json = json_files.read(out / "run.json", "run", "")
    assert {k: report["run"][k] for k in run_json} == run_json
    assert report["board"]["name"] == "mps2-an386" and report["board"]["cpu"] == "Cortex-M4F"
    assert report["summary"]["runtime"] == "tinyml-ptq native, dsp kernels"
    assert report["tinyml_ptq_version"] == __import__("tinyml_ptq").__version__
    assert report["model"]["path"].endswith("digits_cnn.keras")

    # Real numbers: every eval sample ran on the emulated Cortex-M4, bit-exact with TFLM.
    s = report["summary"]
    eval_y = np.load(DIGITS_DIR / "eval.npz")["y"]
    assert s["samples"] == len(eval_y) == report["quantize"]["eval"]["samples"]
    assert s["exact"] == 1.0
    assert s["accuracy_device"] == s["accuracy_int8"], "bit-exact outputs give the reference's accuracy"
    assert s["accuracy_float"] > 0.95 and s["accuracy_float"] - s["accuracy_device"] < 0.02
    assert s["latency_unit"] == "instructions" and s["latency_mean"] > 0
    assert 0 < s["arena_bytes"] < s["ram_bytes"] and s["flash_bytes"] > report["generate"]["weights_bytes"]

    # The confusion matrix counts every sample once, and its diagonal is the device accuracy.
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == len(eval_y)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(s["accuracy_device"])
    assert np.array_equal(matrix.sum(axis=1), np.bincount(eval_y, minlength=10))

    # One op-table row per operator, latencies as the run measured them.
    ops = report["op_table"]
    assert [row["op"] for row in ops] == report["quantize"]["ops"]
    assert [row["latency_mean"] for row in ops] == [o["mean"] for o in report["run"]["latency"]["per_op"]]
    assert all(row["rmse_over_scale"] is not None for row in ops)

    # The recorded commands name the real files.
    cmds = report["commands"]
    assert str(out / "digits_cnn_int8.tflite") in shlex.split(cmds["quantize"])
    assert shlex.split(cmds["deploy"])[:2] == ["tinyml-ptq", "deploy"]


def test_second_run_reuses_artefacts(digits_deployed, tmp_path, capsys):
    """The recorded deploy command, run again, skips quantize, generate and build and rewrites nothing."""
    # On a copy: the shared deployment stays as other tests read it (a re-run's latency may
    # differ by one timer tick, as the guest's idle time before each sample varies).
    out = tmp_path / "digits"
    shutil.copytree(digits_deployed.out_dir, out, copy_function=shutil.copy2)
    tflite, elf = out / "digits_cnn_int8.tflite", out / "firmware" / "build" / "firmware.elf"
    before = {p: p.stat().st_mtime_ns for p in (tflite, elf, out / "firmware" / "model" / "model.c")}
    first = digits_deployed.report

    argv = shlex.split(first["commands"]["deploy"])[1:]
    argv[argv.index("-o") + 1] = str(out)
    assert main(argv) == 0
    second = json.loads((out / "report.json").read_text())
    assert {s["name"]: s["cached"] for s in second["stages"]} == \
        {"quantize": True, "generate": True, "build": True, "run": False}
    assert {p: p.stat().st_mtime_ns for p in before} == before, "a reused artefact was rewritten"
    for key in ("accuracy_float", "accuracy_int8", "accuracy_device", "exact", "flash_bytes", "ram_bytes",
                "arena_bytes"):
        assert second["summary"][key] == first["summary"][key], key
    assert second["quantize"] == first["quantize"]
    paths = ("project_dir", "elf", "bin", "hex")  # the copy lives elsewhere; everything else is equal
    assert {k: v for k, v in second["build"].items() if k not in paths} == \
        {k: v for k, v in first["build"].items() if k not in paths}
    printed = capsys.readouterr().out
    assert "stages     quantize reused, generate reused, build reused, run" in printed


def test_changed_inputs_rerun_their_stages(digits_deployed, tmp_path):
    """A damaged ELF is rebuilt (quantize and generate still reused); other options re-quantize."""
    from tinyml_ptq.pipeline.deploy import deploy

    out = tmp_path / "moved"
    shutil.copytree(digits_deployed.out_dir, out)  # a moved folder keeps its cache
    elf = out / "firmware" / "build" / "firmware.elf"
    elf.write_bytes(elf.read_bytes()[:-16] + bytes(16))
    args = (DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), str(DIGITS_DIR / "eval.npz"), out)

    rebuilt = deploy(*args)
    assert {s.name: s.cached for s in rebuilt.stages} == \
        {"quantize": True, "generate": True, "build": False, "run": False}
    assert rebuilt.run.exact == 1.0 and rebuilt.generate.project_dir == str(out / "firmware")

    fewer = deploy(*args, samples=50)
    assert not fewer.stages[0].cached
    assert fewer.quantize.report["calibration"]["samples"] == 50
    assert fewer.run.exact == 1.0


def test_kernels_option_regenerates_only_the_firmware(digits_deployed, tmp_path):
    """--kernels reference on an M4 board: quantize reused, the project regenerated with the
    reference kernels, still bit-exact, more instructions than the default dsp kernels."""
    from tinyml_ptq.pipeline.deploy import deploy

    out = tmp_path / "reference"
    shutil.copytree(digits_deployed.out_dir, out)
    args = (DIGITS_DIR / "digits_cnn.keras", str(DIGITS_DIR / "calib.npz"), str(DIGITS_DIR / "eval.npz"), out)
    result = deploy(*args, kernels="reference")
    assert {s.name: s.cached for s in result.stages} == \
        {"quantize": True, "generate": False, "build": False, "run": False}
    assert digits_deployed.generate.kernels == "dsp" and result.generate.kernels == "reference"
    assert json.loads((out / "firmware" / "project.json").read_text())["kernels"] == "reference"
    assert result.run.exact == 1.0
    assert result.run.latency_mean > digits_deployed.run.latency_mean
    commands = result.report["commands"]
    assert "--kernels reference" in commands["deploy"] and "--kernels reference" in commands["generate"]
    # auto resolves to the board's set, so it shares the dsp cache entry
    again = deploy(*args, kernels="dsp")
    assert again.generate.kernels == "dsp" and not again.stages[1].cached
    assert deploy(*args).stages[1].cached


def test_dsp_kernels_on_a_cortex_m3_are_refused_before_quantizing(tmp_path, capsys):
    code = main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "--board", "mps2-an385", "--kernels", "dsp",
                 "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [err[0]] and "has no DSP extension" in err[0]
    assert not (tmp_path / "out").exists()


def test_failed_stage_is_named_and_earlier_artefacts_stay(digits_deployed, tmp_path, capsys, monkeypatch):
    """NUCLEO-L4R5ZI builds, but its emulator (Renode) is not where it is said to be: the run
    stage fails, the firmware stays."""
    monkeypatch.setenv("RENODE", str(tmp_path / "no-renode-here"))
    out = tmp_path / "nucleo"
    shutil.copytree(digits_deployed.out_dir, out)
    code = main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "--board", "nucleo-l4r5zi", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: stage run failed: ") and "no-renode-here" in err[-1], err[-1]
    assert not any("Traceback" in line for line in err)
    assert (out / "digits_cnn_int8.tflite").is_file()
    assert json.loads((out / "build.json").read_text())["board"] == "nucleo-l4r5zi"
    assert (out / "firmware" / "build" / "firmware.hex").is_file()
    assert not (out / "report.json").exists(), "the report of the earlier run must not pass for this one"


def test_failed_quantize_is_named(tmp_path, capsys):
    code = main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(tmp_path / "missing.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: stage quantize failed: --data ") and "missing.npz" in err[-1]
    assert [line for line in err if line.startswith("error")] == [err[-1]]  # progress lines before it only
    assert not list((tmp_path / "out").glob("*.tflite"))


@pytest.mark.parametrize("runtime, who", [("native", "the native runtime"), ("tflm", "TensorFlow Lite Micro")])
def test_an_operator_without_a_kernel_is_refused_before_calibrating(tmp_path, capsys, runtime, who, request):
    """GELU has a kernel in neither runtime: the float conversion shows it, before any calibration."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((12,))
    keras.Model(inp, keras.layers.Dense(4)(keras.layers.Dense(16, activation="gelu")(inp))).save(
        tmp_path / "gelu.keras")
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32))
    args = ["deploy", str(tmp_path / "gelu.keras"), "--data", str(tmp_path / "x.npz"), "--eval",
            str(tmp_path / "x.npz"), "-o", str(tmp_path / "out"), "--runtime", runtime]
    if runtime == "tflm":
        args += ["--tflm-dir", str(request.getfixturevalue("tflm_dir"))]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"the model has operator GELU, which {who} has no kernel for (seen in a float conversion, before " \
           "calibrating)" in err, err
    assert "calibrating" not in err.split("error:")[0]  # no calibration ran
    assert not list((tmp_path / "out").glob("*.tflite"))


def test_weights_beyond_the_boards_flash_are_refused_before_calibrating(tmp_path, capsys):
    import keras

    inp = keras.Input((1100,))
    keras.Model(inp, keras.layers.Dense(1000)(inp)).save(tmp_path / "wide.keras")  # 4.4 MB of float weights
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).normal(size=(4, 1100)).astype(np.float32))
    assert main(["deploy", str(tmp_path / "wide.keras"), "--data", str(tmp_path / "x.npz"), "--eval",
                 str(tmp_path / "x.npz"), "-o", str(tmp_path / "out"), "--board", "stm32f4-disco"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"the model's weights alone, about 1,10\d,\d{3} B in int8, exceed stm32f4-disco's 1,048,576 B "
                     r"of flash \(seen before calibrating\)", err), err


def test_unknown_board_is_refused_before_quantizing(tmp_path, capsys):
    code = main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "--board", "mps3-nope", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [err[0]] and "unknown board 'mps3-nope'" in err[0]
    assert not (tmp_path / "out").exists()


def test_api_exposes_the_stages():
    import tinyml_ptq

    for name in ("quantize", "generate", "build", "run", "deploy", "check"):
        assert callable(getattr(tinyml_ptq, name)), name
    assert Path(tinyml_ptq.deploy.__code__.co_filename).name == "deploy.py"


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_parse_and_use_real_options(name):
    """Every tinyml-ptq command in the shipped CI jobs is accepted by the CLI's parser."""
    import yaml

    from tinyml_ptq.cli import cli

    def strings(node, shell=False):
        """The shell lines: GitHub's `run` steps, GitLab's `script`."""
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in strings(v, shell or k in ("run", "script"))]
        if isinstance(node, list):
            return [s for v in node for s in strings(v, shell)]
        return [node] if isinstance(node, str) and shell else []

    text = (DIGITS_DIR.parent / "ci" / name).read_text()
    shell = "\n".join(strings(yaml.safe_load(text))).replace("\\\n", " ")
    commands = [line.strip() for line in shell.splitlines() if line.strip().startswith("tinyml-ptq ")]
    assert sorted(c.split()[1] for c in commands) == ["check", "deploy"], commands
    for command in commands:
        argv = shlex.split(command)[1:]
        with cli.make_context("tinyml-ptq", list(argv)) as ctx:
            sub = cli.get_command(ctx, argv[0])
            sub.make_context(argv[0], argv[1:])  # raises on an unknown option or a bad value
    assert "--junit" in text and "check.xml" in text


# The child process that shows a stage is under way (quantize works in-process for many seconds).
STAGE_WORKERS = {"build": "cc1", "run": "qemu-system-arm"}


def _descendant_commands(pid: int) -> list[str]:
    """Command lines of every process below `pid`."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # the process ended while we looked
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(commands.get(child, ""))
        todo += children.get(child, [])
    return found


def _wait_for_worker(pid: int, worker: str | None) -> None:
    """Return once a process running `worker` is below `pid` (a stage that is surely not over yet)."""
    import time

    if worker is None:
        time.sleep(0.3)
        return
    deadline = time.monotonic() + 60
    while not any(worker in command for command in _descendant_commands(pid)):
        assert time.monotonic() < deadline, f"no {worker} process appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("stage, options", [("quantize", ["--samples", "150"]),
                                            ("build", ["--kernels", "reference"]),
                                            ("run", [])])
def test_ctrl_c_in_a_stage_leaves_only_complete_artefacts_for_the_next_run(digits_deployed, tmp_path, stage,
                                                                             options):
    """SIGINT while STAGE runs (options make it run again on a copy of the deployment): the command
    stops with no emulator left, and the next deploy reuses only what earlier stages completed,
    redoes the interrupted stage and ends bit-exact."""
    import signal
    import subprocess
    import sys

    from conftest import default_sigint, our_qemus

    out = tmp_path / "digits"
    shutil.copytree(digits_deployed.out_dir, out)
    argv = [str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"), "--eval",
            str(DIGITS_DIR / "eval.npz"), "-o", str(out), *options]
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_ptq", "deploy", *argv], stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    started = []  # the stages the interrupted deploy entered; the last is the one SIGINT stopped
    try:
        for line in proc.stderr:
            if line.startswith("deploy: ") and line.split()[1] in ("quantize", "generate", "build", "run"):
                started.append(line.split()[1])
            if started[-1:] == [stage]:
                _wait_for_worker(proc.pid, STAGE_WORKERS.get(stage))
                proc.send_signal(signal.SIGINT)
                break
        started += [line.split()[1] for line in proc.stderr if line.startswith("deploy: ")
                    and line.split()[1] in ("quantize", "generate", "build", "run")]
        assert proc.wait(timeout=60) != 0, f"deploy finished before SIGINT reached {stage}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    interrupted = started[-1]
    assert our_qemus(tmp_path) == []
    assert not (out / "report.json").exists(), "an interrupted deploy left a report"
    assert main(["deploy", *argv]) == 0
    report = json.loads((out / "report.json").read_text())
    cached = {s["name"]: s["cached"] for s in report["stages"]}
    order = ["quantize", "generate", "build", "run"]
    assert all(not cached[s] for s in order[order.index(interrupted):]), (interrupted, cached)
    assert report["summary"]["exact"] == 1.0


def test_build_flags_rebuild_only_the_firmware_and_are_recorded(digits_deployed, tmp_path, capsys):
    out = tmp_path / "flags"
    shutil.copytree(digits_deployed.out_dir, out)
    argv = ["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
            "--eval", str(DIGITS_DIR / "eval.npz"), "-o", str(out), "--opt", "-Os",
            "--cflags=-fno-omit-frame-pointer"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert {s["name"]: s["cached"] for s in report["stages"]} == \
        {"quantize": True, "generate": True, "build": False, "run": False}
    assert report["summary"]["exact"] == 1.0
    assert "--opt=-Os --cflags=-fno-omit-frame-pointer" in report["commands"]["build"]
    assert "-Os" in (out / "firmware" / "build" / "flags.txt").read_text()
    capsys.readouterr()
    assert main(shlex.split(report["commands"]["deploy"])[1:]) == 0  # the same flags: the build is reused
    again = json.loads((out / "report.json").read_text())
    assert [s["cached"] for s in again["stages"]] == [True, True, True, False]
