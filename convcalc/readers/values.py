"""Turning written values into typed arguments, with one rule per PyTorch argument.

Values arrive as shell text (``3x5``, ``true``), as Python literals from
constructor text, or as JSON; ``coerce`` checks each against what the
argument accepts and raises a ``SpecError`` naming the field otherwise.
"""

from __future__ import annotations

import math
import re

from ..engine.errors import SpecError
from ..engine.limits import MAX_DIGITS, MAX_INTEGER

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
        raise SpecError(f"{_clip(text)} has more than {MAX_DIGITS} digits: PyTorch's sizes are 64-bit integers",
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


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[:width] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_magnitudes(name: str, value) -> None:
    """Integers within PyTorch's 64 bits and finite numbers, anywhere in a value."""
    for item in value if isinstance(value, (tuple, list)) else (value,):
        if _is_int(item) and abs(item) > MAX_INTEGER:
            raise SpecError(f"{name}={_clip(str(item))} is out of range: PyTorch's sizes are 64-bit integers",
                            hint=f"give {name} below 2^62", field=name)
        if isinstance(item, float) and not math.isfinite(item):
            raise SpecError(f"{name}={item} is not a finite number", hint=f"give {name} as a finite number",
                            field=name)


def _ints(value, *, allow_none_items=False) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(
        _is_int(v) or (allow_none_items and v is None) for v in value
    )


def _fail(name: str, value, expected: str, example: str) -> SpecError:
    return SpecError(f"{name}={_show(value)} is not {expected}", hint=f"give {expected}, e.g. {example}", field=name)


def _show(value) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join("none" if v is None else str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if not isinstance(value, str) else repr(value)


def _integer(name, value, _):
    if _is_int(value):
        return value
    raise _fail(name, value, "an integer", f"{name}=64")


def _optional_integer(name, value, _):
    return None if value is None else _integer(name, value, _)


def _size(name, value, _):
    if _is_int(value):
        return value
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "an integer or per-axis integers joined by x", f"{name}=3 or {name}=3x5")


def _optional_size(name, value, _):
    return None if value is None or value == () else _size(name, value, _)


def _output_size(name, value, _):
    if value is None or _is_int(value):
        return value
    if _ints(value, allow_none_items=True):
        return tuple(value)
    raise _fail(name, value, "an integer or per-axis integers (none keeps an axis)", f"{name}=7 or {name}=nonex7")


def _padding(name, value, _):
    if isinstance(value, str):
        if value.lower() in ("same", "valid", "full"):
            return value.lower()
        if value.lower() in ("same_upper", "same_lower"):
            raise SpecError(f"padding={value.lower()} is TensorFlow's and ONNX's, not PyTorch's",
                            hint="convcalc solve turns it into PyTorch layers (a zero pad and a conv)", field=name)
        raise _fail(name, value, "a padding", "p=1, p=1x2, p=same, p=valid or p=full")
    return _size(name, value, _)


def _boolean(name, value, _):
    if isinstance(value, bool):
        return value
    raise _fail(name, value, "true or false", f"{name}=false")


def _optional_boolean(name, value, _):
    return None if value is None else _boolean(name, value, _)


def _number(name, value, _):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _fail(name, value, "a number", f"{name}=0.5")


def _optional_number(name, value, _):
    return None if value is None else _number(name, value, _)


def _scale(name, value, _):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(value)
    raise _fail(name, value, "a scale factor", "scale_factor=2")


def _optional_float(name, value, _):
    return None if value is None else _number(name, value, _)


def _ints_tuple(name, value, _):
    """A per-axis tuple of integers (a lone integer is one axis); negative sizes allowed (-1 in reshape)."""
    if _is_int(value):
        return (value,)
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "integers joined by x", f"{name}=0x2x3x1")


def _dim(name, value, _):
    """An axis (counting the batch, as PyTorch), several joined by x, or none."""
    if value is None or _is_int(value):
        return value
    if _ints(value):
        return tuple(value)
    raise _fail(name, value, "an axis or axes joined by x", f"{name}=1 or {name}=2x3")


def _text(name, value, _):
    if isinstance(value, str) and value:
        return value.lower() if name == "mode" else value
    raise _fail(name, value, "a word", f"{name}=bilinear" if name == "mode" else f"{name}=name")


def _word(choices):
    def check(name, value, _):
        if isinstance(value, str) and value.lower() in choices:
            return value.lower()
        raise SpecError(
            f"{name}={_show(value)} is not one of {', '.join(choices)}",
            hint=f"use {name}={choices[0]}" + (f" or another of {', '.join(choices[1:])}" if len(choices) > 1 else ""),
            field=name,
        )

    return check


COERCERS = {
    "in_channels": _optional_integer, "out_channels": _integer, "groups": _integer, "num_features": _optional_integer,
    "in_features": _optional_integer, "out_features": _integer, "start_dim": _integer, "end_dim": _integer,
    "divisor_override": _optional_integer,
    "kernel_size": _size, "dilation": _size, "output_padding": _size,
    "stride": _optional_size, "padding": _padding, "output_size": _output_size, "size": _optional_size,
    "scale_factor": _scale,
    "bias": _boolean, "ceil_mode": _boolean, "count_include_pad": _boolean, "affine": _boolean,
    "track_running_stats": _boolean, "inplace": _boolean, "return_indices": _boolean,
    "align_corners": _optional_boolean,
    "eps": _number, "momentum": _optional_number, "p": _number, "negative_slope": _number,
    "padding_mode": _word(("zeros", "reflect", "replicate", "circular")),
    "mode": _text,  # each kind checks its own modes (upsampling, padding, stochastic depth)
    "approximate": _word(("none", "tanh")),
    "recompute_scale_factor": _optional_boolean, "elementwise_affine": _boolean, "keepdim": _boolean,
    "alpha": _number, "beta": _number, "k": _number, "threshold": _number, "min_val": _number, "max_val": _number,
    "init": _number, "value": _number, "scalar": _optional_float,
    "num_groups": _integer, "num_channels": _optional_integer, "num_parameters": _integer,
    "upscale_factor": _integer, "downscale_factor": _integer, "chunks": _integer, "index": _integer,
    "length": _integer, "step": _integer, "dim0": _integer, "dim1": _integer, "params": _integer,
    "start": _optional_integer, "end": _optional_integer,
    "dim": _dim, "dims": _ints_tuple, "shape": _ints_tuple, "output": _ints_tuple,
    "weight_shape": _ints_tuple, "constant_shape": _ints_tuple,
    "normalized_shape": _size, "split_size_or_sections": _size, "op": _text,
    "onnx": _boolean, "sizes": _ints_tuple, "coordinate": _text, "rounding": _text, "scales": _scale,
}


def coerce(name: str, value):
    """Check ``value`` for the PyTorch argument ``name`` and return its canonical form.

    >>> coerce("kernel_size", [3, 5]), coerce("padding", "SAME")
    ((3, 5), 'same')
    """
    _check_magnitudes(name, value)
    return COERCERS[name](name, value, None)
