"""The package's layering: no import circles, core/ free of the CLI, files and Zarr, training apart."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vscr_cli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The vscr_cli modules ``name`` imports anywhere in its text (function-level imports too)."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    """A shortest import path from ``start`` back to itself, or None."""
    paths = {module: [start, module] for module in GRAPH[start]}
    frontier = list(paths)
    while frontier:
        following = []
        for module in frontier:
            if module == start:
                return paths[module]
            for imported in GRAPH[module]:
                if imported not in paths:
                    paths[imported] = [*paths[module], imported]
                    following.append(imported)
        frontier = following
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_circle(module):
    cycle = _cycle_from(module)
    assert cycle is None, " -> ".join(cycle)


def test_core_imports_nothing_outside_core():
    for name in MODULES:
        if name.startswith("vscr_cli.core"):
            outside = {m for m in GRAPH[name] if not m.startswith("vscr_cli.core")}
            assert not outside, f"{name} imports {sorted(outside)}"


def test_no_stage_imports_the_training_stage():
    """Prediction and the rest reach the model through vscr_cli.model_folders, never through training."""
    for name in MODULES:
        if name.startswith("vscr_cli.stages.") and not name.startswith("vscr_cli.stages.train"):
            training = {m for m in GRAPH[name] if m == "vscr_cli.stages.train" or m.startswith("vscr_cli.stages.train.")}
            assert not training, f"{name} imports {sorted(training)}"
