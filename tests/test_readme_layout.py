"""The table of floors in docs/architecture.md is the one tests/test_architecture.py enforces."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rooms_enforced() -> dict[str, int]:
    tree = ast.parse((ROOT / "tests" / "test_architecture.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROOMS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("tests/test_architecture.py has no ROOMS table")


def _rooms_documented() -> dict[str, int]:
    rooms = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        match = re.match(r"floor (\d)  ((?:\w+/ )*\w+/)", line)
        if match:
            for folder in match.group(2).split():
                rooms[folder.rstrip("/")] = int(match.group(1))
    return rooms


def test_the_documented_floors_are_the_enforced_ones():
    enforced, documented = _rooms_enforced(), _rooms_documented()
    assert documented, "docs/architecture.md has no floor table"
    assert {room: floor for room, floor in enforced.items()} == {
        room: floor for room, floor in documented.items()}, (enforced, documented)
