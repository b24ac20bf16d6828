"""project.json has one writer and one reader (tinyml_ptq.project_folder), with a schema version."""

from __future__ import annotations

import json

import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.errors import UserError
from tinyml_ptq.project_folder import SCHEMA_VERSION, read_project


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_models):
    from tinyml_ptq.project import generate

    out = tmp_path_factory.mktemp("pf") / "ad01"
    generate(shared_models / "ad01_int8.tflite", out, board="host")
    return out


def test_generate_writes_the_schema_version_first(project):
    text = (project / "project.json").read_text()
    assert next(iter(json.loads(text))) == "schema_version"
    assert read_project(project)["schema_version"] == SCHEMA_VERSION


def test_a_project_without_a_version_reads_as_version_1(project, tmp_path):
    meta = json.loads((project / "project.json").read_text())
    del meta["schema_version"]
    (tmp_path / "project.json").write_text(json.dumps(meta))
    assert read_project(tmp_path)["board"] == meta["board"]


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, "1"])
def test_a_newer_or_foreign_version_is_refused_in_one_line(project, tmp_path, version, capsys):
    meta = json.loads((project / "project.json").read_text())
    meta["schema_version"] = version
    (tmp_path / "project.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="schema version .* newer than this tinyml-ptq reads"):
        read_project(tmp_path)
    assert main(["build", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "schema version" in err[0]


def test_corrupt_or_missing_project_files_are_one_error(tmp_path):
    with pytest.raises(UserError, match="not a tinyml-ptq firmware project"):
        read_project(tmp_path)
    (tmp_path / "project.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="is corrupt"):
        read_project(tmp_path)
