"""The test modules say what they need (see conftest.py): no module of tests/ skips at import with a
module-level ``pytest.importorskip``, imports an optional package unguarded at module level, or
imports a test module; what tests share lives in helper modules (torch_nets, torchvision_models,
terminal, loops), which import without the optional packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MODULES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
OPTIONAL = {"torch", "torchvision", "onnx", "onnxruntime", "jsonschema", "referencing"}  # the tests may lack them


def _module_level(tree: ast.Module):
    """Every node that runs when the module is imported: all but function bodies (class bodies run)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(node.decorator_list)
            stack.extend(node.args.defaults + [d for d in node.args.kw_defaults if d is not None])
        elif not isinstance(node, ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _guarded(tree: ast.Module) -> set[int]:
    """The ids of the nodes inside the body of a ``try`` whose handlers catch ImportError."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(handler.type is None or any(
                name in ast.unparse(handler.type) for name in ("ImportError", "ModuleNotFoundError", "Exception"))
                for handler in node.handlers):
            guarded.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return guarded


def _imported(node) -> list[tuple[str, int]]:
    """(module, relative level) for each module an import statement names."""
    if isinstance(node, ast.Import):
        return [(alias.name, 0) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.module is None or (node.module == "tests" and not node.level):  # from . import a; from tests import a
            return [(f"{node.module or ''}.{alias.name}".lstrip("."), node.level) for alias in node.names]
        return [(node.module, node.level)]
    return []


def _is_test_module(name: str, level: int) -> bool:
    parts = name.split(".")
    if level == 0 and parts[0] != "tests":  # an absolute import of something else (pytest, convcalc, ...)
        return False
    return any(part.startswith("test_") for part in parts)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(TESTS)) for p in MODULES])
def test_a_module_of_the_tests_imports_no_test_module(path):
    tree = ast.parse(path.read_text(), str(path))
    found = [f"line {node.lineno}: {name}" for node in ast.walk(tree) for name, level in _imported(node)
             if _is_test_module(name, level)]
    assert not found, f"{path.name} imports a test module ({', '.join(found)}): move what is shared to a helper"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(TESTS)) for p in MODULES])
def test_a_module_of_the_tests_skips_nothing_at_import(path):
    tree = ast.parse(path.read_text(), str(path))
    skips = [node.lineno for node in _module_level(tree) if isinstance(node, ast.Call)
             and ast.unparse(node.func).split(".")[-1] == "importorskip"]
    assert not skips, (f"{path.name}: pytest.importorskip at module level (line {min(skips)}) skips the "
                       f"module's tests whether they need the package or not: mark those that do (conftest.py)")
    guarded = _guarded(tree)
    bare = [f"line {node.lineno}: {name}" for node in _module_level(tree) for name, level in _imported(node)
            if level == 0 and name.split(".")[0] in OPTIONAL and id(node) not in guarded]
    assert not bare, (f"{path.name} imports an optional package at module level without a guard "
                      f"({', '.join(bare)}): import it in try/except ImportError, or inside the tests")
