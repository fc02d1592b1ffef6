"""The layout is the architecture: imports point one way, nothing imports in a cycle,
the engine is pure, and every module is small and says what it owns."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "convcalc"

# The rooms, in the direction data flows: a module may import from its own
# room and from rooms with a smaller number, never from a larger one.
ROOMS = {
    "engine": 0,
    "readers": 1,
    "backend": 1,
    "functional": 2,
    "presets": 2,
    "verbs": 3,
    "output": 4,
    "api": 4,  # summary() and the sources it reads: above the tables it shows, below the CLI that shares its sources
    "cli": 5,
}
# The package's own entry points sit above everything (the lazy public API, python -m).
ENTRY_POINTS = {"convcalc", "convcalc.__main__"}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every convcalc module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "convcalc")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "convcalc":
                continue
            known = _modules()
            # "from . import render" names a module; "from .x import y" a name in x
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return found


def _third_party(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n != "convcalc" and n not in sys.stdlib_module_names}


def _room(name: str) -> int | None:
    if name in ENTRY_POINTS:
        return None
    return ROOMS[name.split(".")[1]]


GRAPH = {name: _imports(name, path) for name, path in _modules().items()}


def test_every_module_has_a_room():
    homeless = [name for name in GRAPH if name not in ENTRY_POINTS and name.split(".")[1] not in ROOMS]
    assert not homeless, f"modules outside the rooms of the layout: {homeless} (add them to ROOMS and docs/architecture.md)"


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n not in ENTRY_POINTS))
def test_imports_point_one_way(name):
    backwards = sorted(target for target in GRAPH[name]
                       if target not in ENTRY_POINTS and _room(target) > _room(name))
    assert not backwards, f"{name} imports from a later room: {backwards}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of imports in ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = {name: {t for t in targets if t not in ENTRY_POINTS} for name, targets in GRAPH.items()
             if name not in ENTRY_POINTS}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_the_cycle_the_layout_removed():
    graph = {"analysis": {"schema"}, "schema": {"compare"}, "compare": {"analysis", "layers"}, "layers": set()}
    assert find_cycle(graph) == ["analysis", "schema", "compare", "analysis"]
    graph["schema"] = set()
    assert find_cycle(graph) is None


def test_the_engine_imports_only_the_standard_library_and_itself():
    for name, path in _modules().items():
        if name.startswith("convcalc.engine"):
            assert not _third_party(path), f"{name} imports {_third_party(path)}"
            outside = [t for t in GRAPH[name] if not t.startswith("convcalc.engine")]
            assert not outside, f"{name} imports {outside}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_are_small_and_say_what_they_own(name):
    path = _modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{name} has {len(text.splitlines())} lines: split it"
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and docstring.strip(), f"{name} has no docstring saying what it owns"
