"""Values as a shell token writes them: ``3x5``, ``true``, ``none``, ``0.5``, ``?``.

What each argument accepts is the layer kind's to check (``engine/layers/rules.py``);
this module only reads the text.
"""

from __future__ import annotations

import re

from ..engine.errors import SpecError
from ..engine.layers.rules import clip
from ..engine.limits import MAX_DIGITS

_INT = re.compile(r"[+-]?\d+")
_TUPLE = re.compile(r"(?:[+-]?\d+|none|\?)(?:x(?:[+-]?\d+|none|\?))+", re.IGNORECASE)


class Unknown:
    """``?`` in a token: a value for ``convcalc solve`` to find."""

    def __repr__(self) -> str:
        return "?"


UNKNOWN = Unknown()


def read_text_value(text: str):
    """A token value as written in the shell: int, x-joined tuple, float, bool, None or word.

    >>> read_text_value("3x5"), read_text_value("true"), read_text_value("same"), read_text_value("0.5")
    ((3, 5), True, 'same', 0.5)
    """
    lowered = text.lower()
    if any(len(part.lstrip("+-")) > MAX_DIGITS for part in lowered.split("x") if part.lstrip("+-").isdecimal()):
        raise SpecError(f"{clip(text)} has more than {MAX_DIGITS} digits: PyTorch's sizes are 64-bit integers",
                        hint="give a smaller value")
    if _INT.fullmatch(text):
        return int(text)
    if text == "?":
        return UNKNOWN
    if _TUPLE.fullmatch(text):
        return tuple(None if part == "none" else UNKNOWN if part == "?" else int(part) for part in lowered.split("x"))
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return float(text)
    except ValueError:
        return text
