"""Reading command-line values: each parser takes the text of one option and gives its value, or a
``SpecError`` naming the option and showing a value it takes (exit 2, one line and a hint)."""

from __future__ import annotations

from ..engine.errors import SpecError

_RATE_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_rate(text: str, unit: str) -> int | None:
    """A throughput as people write it, in ``unit`` per second (FLOP or B, optional,
    as is "/s"), with a decimal prefix; None if it is not one.

    >>> parse_rate("19.5T", "FLOP"), parse_rate("900 GB/s", "B"), parse_rate("2e12", "B"), parse_rate("fast", "B")
    (19500000000000, 900000000000, None, None)
    """
    body = text.strip()
    for suffix in ("/s", unit, unit.lower()):
        body = body[: -len(suffix)].strip() if body.lower().endswith(suffix.lower()) else body
    number = body.rstrip("kKmMgGtTpP ")
    prefix = body[len(number):].strip().lower()
    if not number or len(number) > 30 or not all(c in "0123456789." for c in number) or number.count(".") > 1:
        return None
    if prefix not in _RATE_PREFIXES:
        return None
    whole, _, fraction = number.partition(".")
    value = (int(whole or 0) * 10 ** len(fraction) + int(fraction or 0)) * _RATE_PREFIXES[prefix] // 10 ** len(fraction)
    return value if 0 < value < 2**62 else None


def positive_option(value: int | None, option: str, example: int) -> int | None:
    """An option's count, which must be positive (None: not given).

    >>> positive_option(3, "--repeat", 5), positive_option(None, "--repeat", 5)
    (3, None)
    """
    if value is not None and value < 1:
        raise SpecError(f"{option} must be a positive integer (got {value})", hint=f"e.g. {option} {example}",
                        field=option.lstrip("-").replace("-", "_"))
    return value


def rate_option(text: str, option: str, unit: str, example: str) -> int:
    """A throughput option's value (--peak in FLOP/s, --bandwidth in B/s)."""
    value = parse_rate(text, unit)
    if value is None:
        kind = "throughput" if unit == "FLOP" else "bandwidth"
        raise SpecError(f"{option} {text[:40]!r} is not a {kind}", hint=f"e.g. {option} {example}",
                        field=option.lstrip("-"))
    return value


def memory_limit_option(text: str | None) -> int | None:
    """--memory-limit's value in bytes (None: not given).

    >>> memory_limit_option("2GiB"), memory_limit_option(None)
    (2147483648, None)
    >>> memory_limit_option(".")
    Traceback (most recent call last):
    convcalc.engine.errors.SpecError: --memory-limit '.' is not a size
    """
    if text is None:
        return None
    from ..engine.units import parse_bytes

    limit = parse_bytes(text)
    if limit is None:
        raise SpecError(f"--memory-limit {text[:40]!r} is not a size", hint="e.g. --memory-limit 2GiB",
                        field="memory_limit")
    return limit


def position_option(text: str | None) -> tuple[int, ...] | None:
    """--at's output position: integers joined by , or x.

    >>> position_option("0,1"), position_option("2x3"), position_option(None)
    ((0, 1), (2, 3), None)
    """
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    if not all(p.strip().isascii() and p.strip().isdigit() and len(p.strip()) <= 18 for p in parts):
        raise SpecError(f"--at {text[:40]!r} is not an output position", hint="e.g. --at 0,1", field="at")
    return tuple(int(p) for p in parts)


def range_options(texts, names: dict, solvable) -> dict:
    """--range NAME=LOW..HIGH values, by argument name (``names`` maps short keys to names;
    ``solvable`` is what may be searched, besides input)."""
    ranges = {}
    for text in texts or ():
        key, _, span = text.partition("=")
        low, dots, high = span.partition("..")
        name = {"out": "out_channels", "input": "input"}.get(key.strip(), names.get(key.strip(), key.strip()))
        plain = all(part.strip().isascii() and part.strip().isdigit() and len(part.strip()) <= 18 for part in (low, high))
        if not dots or not plain or int(low) > int(high):
            raise SpecError(f"--range {text[:40]!r} is not NAME=LOW..HIGH", hint="e.g. --range p=0..32", field="range")
        if name not in solvable and name != "input":
            raise SpecError(f"--range {text[:40]!r}: {key[:20]} cannot be solved for",
                            hint=f"give one of {', '.join(solvable)} or input", field="range")
        ranges[name] = (int(low), int(high))
    return ranges


def shape_template(text: str, option: str | None = None) -> tuple:
    """A shape in which ? stands for any size (solve's INPUT, or the ``option`` --target); None where it is ?.

    >>> shape_template("3x?x?"), shape_template("64x112x112")
    ((3, None, None), (64, 112, 112))
    """
    from dataclasses import replace

    from ..readers import parse_shape

    parts = text.split("x")
    try:
        # the known sizes are checked as any shape is (only a whole part may be ?)
        known = parse_shape("x".join("1" if p == "?" else p for p in parts)) if "?" in text else parse_shape(text)
    except SpecError as err:
        if option is not None and err.origin is not None:
            err.origin = replace(err.origin, where=option)
            err.field = option.lstrip("-")
        raise
    return tuple(None if p == "?" else n for p, n in zip(parts, known)) if "?" in text else known
