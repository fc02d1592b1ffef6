"""The rules that check one argument's value, whatever reader wrote it.

A rule takes the argument's name and the value as read (an int, float, bool,
string, None or a tuple of them) and returns the value in its canonical form,
or raises a ``SpecError`` naming the argument and saying what it accepts. A
kind's argument gets its rule from its annotation (``RULES_BY_ANNOTATION``)
unless its declaration names one (``arg(rule=...)``): so Conv's ``padding``
takes ``same`` and Pad's does not, though both are called padding.
"""

from __future__ import annotations

import math

from ..errors import SpecError
from ..limits import MAX_INTEGER

def clip(text: str, width: int = 24) -> str:
    """Text cut to ``width`` characters, for messages.

    >>> clip("x" * 30, 4)
    'xxxx...'
    """
    return text if len(text) <= width else text[:width] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_magnitudes(name: str, value) -> None:
    """Integers within PyTorch's 64 bits and finite numbers, anywhere in a value.

    >>> check_magnitudes("stride", 2**63)
    Traceback (most recent call last):
    ...
    convcalc.engine.errors.SpecError: stride=9223372036854775808 is out of range: PyTorch's sizes are 64-bit integers
    """
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if _is_int(item) and abs(item) > MAX_INTEGER:
            raise SpecError(f"{name}={clip(str(item))} is out of range: PyTorch's sizes are 64-bit integers",
                            hint=f"give {name} below 2^62", field=name)
        if isinstance(item, float) and not math.isfinite(item):
            raise SpecError(f"{name}={item} is not a finite number", hint=f"give {name} as a finite number",
                            field=name)


def _ints(value, *, allow_none_items=False) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(
        _is_int(v) or (allow_none_items and v is None) for v in value)


def show(value) -> str:
    """A value as a message shows it: tuples joined by x, strings quoted, long text cut."""
    if isinstance(value, (tuple, list)):
        return clip("x".join("none" if v is None else str(v) for v in value), 40)
    if isinstance(value, bool):
        return str(value).lower()
    return clip(str(value), 40) if not isinstance(value, str) else repr(clip(value, 40))


def _fail(name: str, value, expected: str, example: str) -> SpecError:
    return SpecError(f"{name}={show(value)} is not {expected}", hint=f"give {expected}, e.g. {example}", field=name)


def optional(rule):
    """The rule, or None (an empty value too) for 'not given'."""
    def check(name, value):
        return None if value is None or value == () else rule(name, value)

    check.__name__ = f"optional_{rule.__name__}"
    return check


def integer(name, value):
    if _is_int(value):
        return value
    raise _fail(name, value, "an integer", f"{name}=64")


def size(name, value):
    """An integer, or one per axis."""
    if _is_int(value):
        return value
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "an integer or per-axis integers joined by x", f"{name}=3 or {name}=3x5")


def output_size(name, value):
    """Adaptive pooling's and transposed convolution's output size: none keeps an axis."""
    if value is None or _is_int(value):
        return value
    if _ints(value, allow_none_items=True):
        return tuple(value)
    raise _fail(name, value, "an integer or per-axis integers (none keeps an axis)", f"{name}=7 or {name}=nonex7")


def conv_padding(name, value):
    """Convolution padding: sizes, or PyTorch's words same and valid (full: torch.nn.functional's)."""
    if isinstance(value, str):
        if value.lower() in ("same", "valid", "full"):
            return value.lower()
        if value.lower() in ("same_upper", "same_lower"):
            raise SpecError(f"padding={value.lower()} is TensorFlow's and ONNX's, not PyTorch's",
                            hint="convcalc solve turns it into PyTorch layers (a zero pad and a conv)", field=name)
        raise _fail(name, value, "a padding", "p=1, p=1x2, p=same, p=valid or p=full")
    return size(name, value)


def boolean(name, value):
    if isinstance(value, bool):
        return value
    raise _fail(name, value, "true or false", f"{name}=false")


def number(name, value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _fail(name, value, "a number", f"{name}=0.5")


def probability(name, value):
    """A number from 0 to 1, as PyTorch's dropout probabilities."""
    p = number(name, value)
    if not 0 <= p <= 1:
        raise SpecError(f"{name}={p:g} is not a probability", hint=f"give {name} between 0 and 1, e.g. {name}=0.5",
                        field=name)
    return p


def scale(name, value):
    """A scale factor, or one per axis."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise _fail(name, value, "a scale factor", f"{name}=2")


def scales(name, value):
    """Per-axis scales (a lone number is one axis)."""
    value = scale(name, value)
    return value if isinstance(value, tuple) else (value,)


def integers(name, value):
    """Integers joined by x (a lone integer is one); negative values allowed (-1 in reshape)."""
    if _is_int(value):
        return (value,)
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "integers joined by x", f"{name}=0x2x3x1")


def dim(name, value):
    """An axis (counting the batch, as PyTorch), several joined by x, or none."""
    if value is None or _is_int(value):
        return value
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "an axis or axes joined by x", f"{name}=1 or {name}=2x3")


def text(name, value):
    """Any non-empty word (an opaque operation's name)."""
    if isinstance(value, str) and value:
        return value
    raise _fail(name, value, "a word", f"{name}=name")


def word(*choices: str):
    """One of ``choices``, in any case."""
    def check(name, value):
        if isinstance(value, str) and value.lower() in choices:
            return value.lower()
        raise SpecError(
            f"{name}={show(value)} is not one of {', '.join(choices)}",
            hint=f"use {name}={choices[0]}" + (f" or another of {', '.join(choices[1:])}" if len(choices) > 1 else ""),
            field=name)

    check.__name__ = "word"
    check.choices = choices
    return check


# A kind's argument takes the rule its annotation names, unless it declares another.
RULES_BY_ANNOTATION = {
    "bool": boolean,
    "bool | None": optional(boolean),
    "float": number,
    "float | None": optional(number),
    "float | tuple[float, ...] | None": optional(scale),
    "tuple[float, ...] | None": optional(scales),
    "int": integer,
    "int | None": optional(integer),
    "int | tuple[int, ...]": size,
    "int | tuple[int, ...] | None": optional(size),
    "int | tuple[int | None, ...] | None": output_size,
    "tuple[int, ...] | int | None": output_size,
    "tuple[int, ...]": integers,
    "tuple[int, ...] | None": optional(integers),
}
