"""Hypothesis's profile, and the optional packages the tests may need.

A test that needs torch, onnx, onnxruntime or jsonschema says so with a marker (``needs_torch``,
``needs_onnx``, ``needs_onnxruntime``, ``needs_jsonschema``; a module whose every test needs one
sets ``pytestmark``) and skips, with the reason, where that package does not import; every other
test runs. A test module therefore imports an optional package behind a guard, never with a
module-level ``pytest.importorskip``, and imports no other test module (test_layout_of_tests.py
checks both). A doctest needs a package when one of its examples imports it.
"""

import ast
import functools
import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

# Deterministic in CI so a red run can be reproduced; more examples on demand.
settings.register_profile(
    "default",
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")

# marker -> the package it asks for (the markers are registered in pyproject.toml)
OPTIONAL = {"needs_torch": "torch", "needs_onnx": "onnx", "needs_onnxruntime": "onnxruntime",
            "needs_jsonschema": "jsonschema", "needs_timm": "timm", "needs_torchinfo": "torchinfo",
            "needs_pandas": "pandas", "needs_nbclient": "ipykernel", "needs_mkdocs": "material"}


@functools.cache
def missing(package: str) -> str | None:
    """Why ``package`` cannot be used here, or None when it imports."""
    try:
        if package == "timm":  # it imports torchvision, made importable first (see torchvision_models)
            from .torchvision_models import torchvision

            try:
                torchvision()
            except pytest.skip.Exception:
                return "needs timm and torchvision, which is not installed"
        importlib.import_module(package)
    except ImportError as error:
        return f"needs {package}, which does not import here ({error})"
    return None


def _imported_by(doctest) -> set[str]:
    """The top-level packages a doctest's examples import."""
    imported = set()
    for example in doctest.examples:
        try:
            tree = ast.parse(example.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    return imported


def pytest_collection_modifyitems(config, items):
    # A hook of the whole session: it also sees the doctests collected from convcalc/ and README.md
    # (this file is loaded whenever tests/ is among the paths run, as in the default run).
    for item in items:
        doctest = getattr(item, "dtest", None)  # set on the items of doctests
        if doctest is not None:
            imported = _imported_by(doctest)
            for marker, package in OPTIONAL.items():
                if package in imported:
                    item.add_marker(marker)
        for marker, package in OPTIONAL.items():
            if item.get_closest_marker(marker) is not None and (reason := missing(package)):
                item.add_marker(pytest.mark.skip(reason=reason))
