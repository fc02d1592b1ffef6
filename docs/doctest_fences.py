"""A Griffe extension for the API reference: the docstrings' ``>>>`` examples shown as code.

convcalc's docstrings write their examples as plain doctests, which Markdown would
otherwise read as text (a list in an output, ``['11', '11']``, reads as a link). Each run
of lines from a ``>>>`` to the next blank line is put in a ``pycon`` fence.
"""

from __future__ import annotations

import griffe


def fenced(text: str) -> str:
    """``text`` with each doctest (a ``>>>`` line up to the next blank line) in a fence."""
    out: list[str] = []
    inside = False
    in_fence = False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if not in_fence and not inside and stripped.startswith(">>>"):
            out.append("```pycon")
            inside = True
        elif inside and not stripped:
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring Griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fenced(obj.docstring.value)
