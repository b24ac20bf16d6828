"""Boards are data: firmware/boards/<name>/board.toml, read into one Board each."""

from __future__ import annotations

import pytest

from tinyml_ptq.core.resources import FIRMWARE_DIR
from tinyml_ptq.target.boards import BOARD_FILE, BOARDS, load_board


def test_every_board_folder_is_a_board_and_every_board_has_its_code():
    folders = {f.name for f in (FIRMWARE_DIR / "boards").iterdir() if (f / BOARD_FILE).is_file()}
    assert folders == set(BOARDS)
    for board in BOARDS.values():
        assert board.source_dirs[-1] == board.name
        for folder in board.source_dirs:
            assert (FIRMWARE_DIR / "boards" / folder).is_dir(), (board.name, folder)
        assert board.is_host or (FIRMWARE_DIR / "boards" / board.name / "linker.ld").is_file()


def test_a_new_board_is_a_folder(tmp_path):
    """What adding a board that QEMU models takes on the Python side: nothing but its board.toml."""
    folder = tmp_path / "mps2-an521"
    folder.mkdir()
    (folder / BOARD_FILE).write_text(
        (FIRMWARE_DIR / "boards" / "mps2-an505" / BOARD_FILE).read_text().replace("mps2-an505", "mps2-an521"))
    board = load_board(folder)
    assert board.name == "mps2-an521" and board.qemu_machine == "mps2-an521" and board.kernels == "dsp"
    assert board.cpu_flags == BOARDS["mps2-an505"].cpu_flags and isinstance(board.cpu_flags, tuple)


def test_a_misspelt_field_is_refused(tmp_path):
    (tmp_path / BOARD_FILE).write_text((FIRMWARE_DIR / "boards" / "host" / BOARD_FILE).read_text() + "dps = true\n")
    with pytest.raises(ValueError, match="unknown fields dps"):
        load_board(tmp_path)


def test_board_files_stay_out_of_generated_projects(tmp_path, shared_models):
    from tinyml_ptq.compiler.project import generate

    generate(shared_models / "ad01_int8.tflite", tmp_path / "p", board="mps2-an386")
    assert not list((tmp_path / "p").rglob(BOARD_FILE))
