"""The three ways to start the CLI offer the same commands."""

from __future__ import annotations

import re
import subprocess
import sys

from tinyml_ptq.cli import cli


def _commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:", 1)[1]
    return re.findall(r"^  (\S+)", section, re.M)


def test_python_m_entry_points_offer_every_command():
    expected = sorted(cli.commands)
    assert {"verify", "bench", "deploy", "generate"} <= set(expected)
    for module in ("tinyml_ptq", "tinyml_ptq.cli"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True)
        assert sorted(_commands(out.stdout)) == expected, module


def test_each_command_starts_with_progress_on():
    """A --json command turns progress lines off; the next main() in the same process (a test,
    a script calling the CLI twice) shows them again."""
    from tinyml_ptq.cli import main
    from tinyml_ptq.core import progress

    progress.set_enabled(False)  # as `deploy --json` leaves it
    assert main(["operators"]) == 0
    assert progress.enabled()
