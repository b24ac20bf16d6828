"""The README and docs/ as a reader meets them: the README short, every link landing on a file,
and every `tinyml-ptq` and `make` command in their shell and output blocks one the CLI and the
Makefile accept (its subcommand exists and it uses only options that subcommand declares)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinyml_ptq.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def commands(text: str, program: str) -> list[str]:
    """Lines of shell and output blocks that run `program` (after a `$ ` prompt or none), with
    their continuations: a trailing backslash, or indented synopsis lines starting with [ or -."""
    found = []
    for lang, block in FENCE.findall(text):
        if lang not in ("sh", "text", "console", ""):
            continue
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].removeprefix("$ ").strip()
            i += 1
            if not line.startswith(program + " "):
                continue
            while i < len(lines) and (line.endswith("\\") or re.match(r"\s+[\[-]", lines[i])):
                line = line.rstrip("\\").rstrip() + " " + lines[i].strip()
                i += 1
            found += [part.strip() for part in re.split(r"&&|\|\||;|\|(?=\s)", line)
                      if part.strip().startswith(program + " ")]
    return found


def cli_errors(command: str) -> list[str]:
    """What the CLI would not accept in `command`: an unknown subcommand or option."""
    words = command.split()
    sub = cli.commands.get(words[1])
    if sub is None:
        return [f"no command {words[1]!r}"]
    takes_value = {opt: not getattr(p, "is_flag", False) and not getattr(p, "count", False)
                   for p in sub.params for opt in (*p.opts, *p.secondary_opts)}
    takes_value.update({"--help": False, "-h": False})
    code = re.split(r"\s#\s", " ".join(words[2:]), maxsplit=1)[0]  # a trailing comment is prose
    tokens = code.replace("[", " ").replace("]", " ").split()
    errors, skip = [], False
    for token in tokens:
        if skip or not re.match(r"--?[a-zA-Z]", token):
            skip = False  # an option's value, or an argument
            continue
        name = token.split("=")[0]
        if name not in takes_value:
            errors.append(f"{words[1]} has no option {name}")
        skip = takes_value.get(name, False) and "=" not in token
    return errors


API = ["quantize", "generate", "build", "run", "deploy", "check", "verify", "flash", "bench"]


def api_signature(name: str) -> str:
    """`tinyml_ptq.NAME(...) -> Result` as docs/api.md shows it: annotations as written, defaults as repr."""
    import inspect

    import tinyml_ptq

    sig = inspect.signature(getattr(tinyml_ptq, name))
    params, star = [], False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = p.name + (f": {p.annotation}" if p.annotation is not p.empty else "")
        params.append(text + (f" = {p.default!r}" if p.default is not p.empty else ""))
    return f"tinyml_ptq.{name}({', '.join(params)}) -> {sig.return_annotation}"


def test_api_page_shows_the_real_signatures():
    text = (ROOT / "docs" / "api.md").read_text()
    stale = [name for name in API if api_signature(name) not in text]
    assert not stale, f"docs/api.md shows other signatures for {stale}: regenerate them with tests/test_docs.py's api_signature"


def test_python_m_is_the_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tinyml_ptq", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and all(f"  {c}" in proc.stdout for c in cli.commands)


def test_readme_is_an_overview():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"
    text = "\n".join(lines)
    for section in ("## Install", "## Two commands", "## Quick start", "## Boards", "## Benchmark", "## Limits"):
        assert section in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_land_on_files(page):
    broken = [target for target in LINK.findall(page.read_text())
              if not re.match(r"\w+://", target) and not (page.parent / target).exists()]
    assert not broken, f"{page.name} links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_commands_are_ones_the_cli_accepts(page):
    text = page.read_text()
    problems = {c: e for c in commands(text, "tinyml-ptq") if (e := cli_errors(c))}
    assert not problems, problems
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    unknown = [c for c in commands(text, "make") if c.split()[1] not in targets and "=" not in c.split()[1]
               and not c.split()[1].startswith("-")]
    assert not unknown, f"make targets the Makefile lacks: {unknown}"


def test_the_checker_finds_what_is_wrong():
    text = "```sh\ntinyml-ptq generate M -o D --bord x\ntinyml-ptq frobnicate\n$ tinyml-ptq build D \\\n  --lto\n```\n"
    found = commands(text, "tinyml-ptq")
    assert found == ["tinyml-ptq generate M -o D --bord x", "tinyml-ptq frobnicate", "tinyml-ptq build D --lto"]
    assert [cli_errors(c) for c in found] == [["generate has no option --bord"], ["no command 'frobnicate'"], []]
