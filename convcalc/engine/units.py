"""Numbers for people: 1.81 G, 11.7 M, 3/2, and memory sizes as people write them (2GiB).

The engine's and the backend's messages use these; pictures (bars, sparklines) are drawn in
``output/charts.py``, and command-line values are read in ``cli/values.py``.
"""

from __future__ import annotations

from fractions import Fraction

_PREFIXES = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human(n: int) -> str:
    """Three significant digits and a decimal prefix; small numbers as they are; past the
    prefixes, a power of ten (computed on the digits, so no number is too large).

    >>> human(1_814_073_856), human(11_689_512), human(9472), human(640), human(7 * 10**400)
    ('1.81 G', '11.7 M', '9.47 K', '640', '7.00e400')
    """
    if abs(n) >= 10**15:
        digits = str(abs(n))
        return f"{'-' if n < 0 else ''}{digits[0]}.{digits[1:3]}e{len(digits) - 1}"
    for scale, prefix in _PREFIXES:
        if abs(n) >= scale:
            value = n / scale
            digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
            return f"{value:.{digits}f} {prefix}"
    return str(n)


def human_seconds(t: float) -> str:
    """Three significant digits in the unit that suits.

    >>> human_seconds(0.0123), human_seconds(4.56e-6), human_seconds(2.5), human_seconds(0)
    ('12.3 ms', '4.56 µs', '2.50 s', '0 s')
    """
    if t <= 0:
        return "0 s"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if t >= scale:
            break
    else:
        scale, unit = 1e-9, "ns"
    value = t / scale
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {unit}"


def human_bytes(n: int) -> str:
    """Binary units for memory.

    >>> human_bytes(3_211_264), human_bytes(512)
    ('3.06 MiB', '512 B')
    """
    if n >= 2**50:
        return f"{human(n)} B"
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def fraction_text(value: Fraction | None) -> str:
    """Whole numbers plainly, others as p/q; None (a global axis) as 'all'.

    >>> fraction_text(Fraction(3)), fraction_text(Fraction(1, 2)), fraction_text(None)
    ('3', '1/2', 'all')
    """
    if value is None:
        return "all"
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def per_axis_text(values) -> str:
    """One value when every axis agrees, else joined by x.

    >>> per_axis_text((Fraction(11), Fraction(11))), per_axis_text((Fraction(3), Fraction(5)))
    ('11', '3x5')
    """
    texts = [fraction_text(v) for v in values]
    if not texts:
        return "-"
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


_BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
               "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_bytes(text: str) -> int | None:
    """A memory size as people write it; None if it is not one.

    >>> parse_bytes("2GiB"), parse_bytes("500 MB"), parse_bytes("1024"), parse_bytes("lots"), parse_bytes(".")
    (2147483648, 500000000, 1024, None, None)
    """
    number = text.strip().rstrip("bBiIkKmMgGtT ")
    unit = text.strip()[len(number):].strip().lower()
    if len(number) > 30 or not all(c in "0123456789." for c in number) or number.count(".") > 1 \
            or not any(c.isdigit() for c in number):
        return None  # plain decimal digits only (not "." alone): no inf, nan, exponents or other scripts' digits
    value = float(number)
    if unit not in _BYTE_UNITS or value * _BYTE_UNITS[unit] >= 2**62:
        return None
    return int(value * _BYTE_UNITS[unit])
