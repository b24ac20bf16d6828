"""The package's shape: subpackages along the pipeline's seams, each importing only those below
it; every module imports on its own, no import cycles (counting the imports inside functions,
which hide cycles rather than remove them), and no module reaching for another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyml_ptq"
# Each subpackage and the ones it may import (docs/architecture.md draws it). The board
# descriptions sit below the compiler, which sizes its output for them; the device stage
# runs what target built; pipeline puts the stages together. Only the entry points
# (the public API in __init__, cli, __main__) stand outside.
SUBPACKAGE_IMPORTS = {
    "core": set(),
    "target": {"core"},
    "compiler": {"core", "target"},
    "interpreters": {"core", "compiler"},
    "quantization": {"core", "compiler", "interpreters"},
    "device": {"core", "target", "compiler", "interpreters"},
    "pipeline": {"core", "target", "compiler", "interpreters", "quantization", "device"},
}
ENTRY_POINTS = {"tinyml_ptq", "tinyml_ptq.cli", "tinyml_ptq.__main__"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, str, int]]:
    """(imported module, imported name, line) for every relative import in the module, wherever it is."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((submodule if submodule in known else target, alias.name, node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports; the package's __init__ (the public API, which re-exports
    the stages) is left out, and a module importing it would show as importing the package."""
    known = set(modules())
    return {name: {target for target, _, _ in imports(name, path, known) if target != name}
            for name, path in modules().items() if name != "tinyml_ptq"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert "tinyml_ptq" not in {t for targets in graph.values() for t in targets}, \
        "a module imports the package itself (take __version__ from tinyml_ptq.core.version)"
    assert cycles(graph) == []


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in SUBPACKAGE_IMPORTS) else None


def test_every_module_is_in_a_subpackage_or_an_entry_point():
    assert {subpackage(m) for m in modules()} - {None} == set(SUBPACKAGE_IMPORTS)
    assert {m for m in modules() if subpackage(m) is None} == ENTRY_POINTS


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a subpackage into one it may not import."""
    return [f"{name} imports {target}" for name, targets in sorted(graph.items()) if name not in ENTRY_POINTS
            for target in sorted(targets)
            if subpackage(target) != subpackage(name) and subpackage(target) not in SUBPACKAGE_IMPORTS[subpackage(name)]]


def test_subpackages_import_only_those_below_them():
    assert upward_imports(import_graph()) == []


def test_the_dependency_check_finds_an_upward_import():
    graph = {"tinyml_ptq.target.build": {"tinyml_ptq.core.errors", "tinyml_ptq.device.run"},
             "tinyml_ptq.device.run": {"tinyml_ptq.target.build"}, "tinyml_ptq.cli": {"tinyml_ptq.device.run"}}
    assert upward_imports(graph) == ["tinyml_ptq.target.build imports tinyml_ptq.device.run"]


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_private_names_across_modules():
    known = set(modules())
    crossing = [f"{name}:{line} imports {target}.{imported}"
                for name, path in modules().items() for target, imported, line in imports(name, path, known)
                if imported.startswith("_") and not imported.startswith("__") and target != name]
    assert crossing == []


def test_every_imported_name_exists():
    """Imports inside functions run only when the function does: a name moved away would fail late."""
    import importlib

    known = set(modules())
    missing = [f"{name}:{line} imports {imported} from {target}"
               for name, path in modules().items() for target, imported, line in imports(name, path, known)
               if not target.endswith(f".{imported}")  # `from . import module`
               and not hasattr(importlib.import_module(target), imported)]
    assert missing == []


@pytest.mark.parametrize("module", sorted(set(modules()) - {"tinyml_ptq.__main__"}))  # __main__ runs the CLI
def test_module_imports_on_its_own(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
