"""The shell token grammar: ``KIND[:ARG,ARG,...]``, each ARG a value or ``key=value``.

    conv:64,k=7,s=2,p=3,bias=false   maxpool:k=3,s=2,p=1   bn   relu   convT:32,k=4,s=2,p=1

Per-axis values are joined by ``x`` (``k=3x5``); bare values fill the kind's
leading arguments (out_channels for conv, kernel_size for pools, ...). A
PyTorch constructor, as ``print(model)`` shows it, is also a token.
"""

from __future__ import annotations

import re

from ..engine.errors import Origin, SpecError
from ..engine.limits import MAX_DIGITS, MAX_INTEGER
from .build import build_layer, lookup_kind
from .constructor import parse_constructor
from .registry import canonical_key
from .values import read_text_value

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SIZE = re.compile(r"[0-9]+")


def parse_layer(token: str):
    """Parse one layer token (or PyTorch constructor text) into a layer spec.

    >>> parse_layer("conv:64,k=7,s=2,p=3,bias=false")
    Conv(out_channels=64, kernel_size=7, stride=2, padding=3, dilation=1, groups=1, bias=False, padding_mode='zeros', in_channels=None, rank=None)
    >>> parse_layer("Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)").kernel_size
    (7, 7)
    """
    text = token.strip()
    if "(" in text:
        return parse_constructor(text)
    kind, arguments, origin = split_token(text)
    return build_layer(kind, arguments, origin)


def split_token(text: str):
    """A token's kind, its arguments as written (short keys kept), and its origin."""
    name_end = text.find(":")
    name = text if name_end < 0 else text[:name_end]
    spans: list[tuple[str, tuple[int, int]]] = [("*", (0, len(name) or len(text)))]
    origin = Origin(text, tuple(spans))
    if not _NAME.fullmatch(name):
        raise SpecError(
            f"{name!r} is not a layer name",
            hint="write KIND[:ARGS], e.g. conv:64,k=3 or relu",
            origin=origin,
            span=(0, max(len(name), 1)),
        )
    kind = lookup_kind(name, origin)
    arguments: dict = {}
    positional = list(kind.positional)
    if name_end >= 0:
        offset = name_end + 1
        parts = text[name_end + 1 :].split(",")
        for index, part in enumerate(parts):
            span = (offset, offset + len(part))
            offset += len(part) + 1
            if not part:
                raise SpecError("empty argument", hint="remove the extra comma", origin=origin, span=span)
            key, eq, raw = part.partition("=")
            if eq:
                key = key.strip()
                if not _NAME.fullmatch(key):
                    raise SpecError(f"{key!r} is not an argument name", hint="write key=value, e.g. k=3",
                                    origin=origin, span=span)
            else:
                raw = key
                if not positional:
                    previous = list(arguments)[-1] if arguments else None
                    if previous is not None and read_text_value(raw.strip()) is not None and raw.strip() and \
                            (raw.strip().lstrip("-").isdigit()):
                        more = []
                        for later in parts[index:]:
                            if not later.strip().lstrip("-").isdigit():
                                break
                            more.append(later.strip())
                        written = "pad" if kind.name == "pad" and previous == "padding" else previous
                        joined = "x".join([_show_value(arguments[previous]), *more])
                        hint = (f"per-axis values are joined by x, not commas: "
                                f"{kind.name}:{joined}" if written == "pad" else
                                f"per-axis values are joined by x, not commas: {previous}={joined}")
                    else:
                        hint = f"name it, e.g. k={raw}" if kind.fields else f"{kind.name} takes no arguments"
                    raise SpecError(
                        f"unexpected value {raw!r}: {kind.name} takes no more bare values",
                        hint=hint,
                        origin=origin,
                        span=span,
                    )
                key = positional.pop(0)
            if key in arguments:
                raise SpecError(f"{key} is given twice", hint="give each argument once", origin=origin, span=span)
            try:
                arguments[key] = read_text_value(raw.strip())
            except SpecError as err:
                raise SpecError(err.message, hint=err.hint, origin=origin, span=span) from None
            spans.append((canonical_key(kind, key), span))
    return kind, arguments, Origin(text, tuple(spans))


def _show_value(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def parse_shape(text: str) -> tuple[int, ...]:
    """An input shape, channels first: ``3x224x224``, ``64x16000``, ``512``.

    >>> parse_shape("3x224x224")
    (3, 224, 224)
    """
    origin = Origin(text, (("*", (0, len(text))),), where="input")
    offset = 0
    sizes = []
    for part in text.split("x"):
        if not _SIZE.fullmatch(part) or len(part) > MAX_DIGITS or int(part) < 1 or int(part) > MAX_INTEGER:
            if _SIZE.fullmatch(part) and int(part[:MAX_DIGITS + 1]) >= 1:
                raise SpecError(
                    f"{part[:24]}{'...' if len(part) > 24 else ''} is too large a size in the input shape: "
                    "PyTorch's sizes are 64-bit integers", hint="give sizes below 2^62", field="input",
                    origin=origin, span=(offset, offset + max(len(part), 1)))
            raise SpecError(
                f"{part!r} is not a positive size in the input shape {text!r}",
                hint="write channels x spatial sizes, e.g. 3x224x224 (2d), 64x16000 (1d), 16x8x56x56 (3d)",
                field="input",
                origin=origin,
                span=(offset, offset + max(len(part), 1)),
            )
        sizes.append(int(part))
        offset += len(part) + 1
    return tuple(sizes)
