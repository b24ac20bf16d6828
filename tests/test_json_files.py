"""The JSON files the toolkit writes and reads back (tinyml_ptq.core.json_files): one writer and one
reader each, schema_version first, a newer version refused in one line instead of misread."""

from __future__ import annotations

import json

import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core import json_files
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.target.project_file import read_project


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_models):
    from tinyml_ptq.compiler.project import generate

    out = tmp_path_factory.mktemp("pf") / "ad01"
    generate(shared_models / "ad01_int8.tflite", out, board="host")
    return out


def test_generate_writes_the_schema_version_first(project):
    text = (project / "project.json").read_text()
    assert next(iter(json.loads(text).items())) == ("schema_version", json_files.KINDS["project"][1])
    assert "schema_version" not in read_project(project) and read_project(project)["board"] == "host"


def test_every_kind_round_trips(tmp_path):
    for kind in json_files.KINDS:
        json_files.write(tmp_path / f"{kind}.json", kind, {"a": [1, 2]})
        assert json_files.read(tmp_path / f"{kind}.json", kind, "redo it") == {"a": [1, 2]}


def test_a_file_without_a_version_reads_as_version_1(project, tmp_path):
    meta = json.loads((project / "project.json").read_text())
    del meta["schema_version"]
    (tmp_path / "project.json").write_text(json.dumps(meta))
    assert read_project(tmp_path)["board"] == meta["board"]


@pytest.mark.parametrize("version", [json_files.KINDS["project"][1] + 1, "1", True])
def test_a_newer_or_foreign_project_version_is_one_error_line(project, tmp_path, version, capsys):
    meta = json.loads((project / "project.json").read_text())
    meta["schema_version"] = version
    (tmp_path / "project.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="schema version .* newer than this tinyml-ptq reads"):
        read_project(tmp_path)
    assert main(["build", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "schema version" in err[0]


def test_check_refuses_a_report_of_a_newer_version(tmp_path, capsys):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema_version": 99, "summary": {"flash_bytes": 1}}))
    assert main(["check", str(report), "--max-flash", "1M"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema version 99" in err[0]


def test_corrupt_or_missing_project_files_are_one_error(tmp_path):
    with pytest.raises(UserError, match="not a tinyml-ptq firmware project"):
        read_project(tmp_path)
    (tmp_path / "project.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a readable JSON firmware project description"):
        read_project(tmp_path)
