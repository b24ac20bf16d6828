"""Outputs: unwritable places are refused before any work, deploy never replaces a file it did not
write, and what the toolkit writes has the permissions the umask gives."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tinyml_ptq.cli import main

from conftest import AD01_MODEL, DIGITS_DIR


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody can create files in: chmod for an ordinary user, a read-only mount for root
    (whom permission bits do not stop)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "existing.txt").write_text("kept")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    (tmp_path / "ro-source").mkdir()
    (tmp_path / "ro-source" / "existing.txt").write_text("kept")
    if subprocess.run(["mount", "--bind", "-o", "ro", str(tmp_path / "ro-source"), str(folder)],
                      capture_output=True).returncode != 0 or \
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only folder here (no mount permission)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_unwritable_outputs_are_refused_before_any_work(read_only_dir, run_projects, dense_data, capsys):
    digits = str(DIGITS_DIR / "digits_cnn.keras")
    calib = str(DIGITS_DIR / "calib.npz")
    cases = [
        ["quantize", digits, "--data", calib, "-o", str(read_only_dir / "m.tflite")],
        ["generate", str(AD01_MODEL), "-o", str(read_only_dir / "new" / "fw")],
        ["deploy", digits, "--data", calib, "--eval", str(DIGITS_DIR / "eval.npz"), "-o", str(read_only_dir / "d")],
        ["run", str(run_projects.get("dense", "host")), "--data", str(dense_data), "--json",
         str(read_only_dir / "r.json")],
        ["build", str(run_projects.get("dense", "host")), "--json", str(read_only_dir / "b.json")],
        ["bench", "-o", str(read_only_dir / "bench"), "--model", str(AD01_MODEL), "--no-stages"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = _one_error_line(capsys)
        assert "not writable" in err and ("Read-only file system" in err or "Permission denied" in err), err
    assert sorted(p.name for p in read_only_dir.iterdir()) == ["existing.txt"]


def test_an_output_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["generate", str(AD01_MODEL), "-o", str(tmp_path / "plain" / "fw")]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys)


def test_deploy_refuses_to_replace_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.json").write_text('{"my": "own report"}')
    assert main(["deploy", str(DIGITS_DIR / "digits_cnn.keras"), "--data", str(DIGITS_DIR / "calib.npz"),
                 "--eval", str(DIGITS_DIR / "eval.npz"), "-o", str(out)]) == 2
    assert "report.json was not written by tinyml-ptq deploy" in _one_error_line(capsys)
    assert (out / "report.json").read_text() == '{"my": "own report"}'
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_deploy_claims_its_outputs_in_the_manifest(digits_deployed):
    import json

    manifest = json.loads((digits_deployed.out_dir / "manifest.json").read_text())
    assert {"report.json", "report.html", "build.json", "run.json", "quantize_report.json",
            "digits_cnn_int8.tflite"} <= set(manifest["written"])


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    from tinyml_ptq.compiler.project import generate
    from tinyml_ptq.core.fileio import write_text_atomic

    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "r.json", "{}")
        generate(AD01_MODEL, tmp_path / "fw", board="host")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "fw").stat().st_mode) == dir_mode
    for path in (tmp_path / "fw").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (dir_mode if path.is_dir() else file_mode), path
