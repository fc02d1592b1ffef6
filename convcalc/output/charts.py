"""Pictures in text for terminals: bars for shares, sparklines for series."""

from __future__ import annotations

BARS = " ▏▎▍▌▋▊▉█"
SPARKS = "▁▂▃▄▅▆▇█"


def bar(share: float, width: int) -> str:
    """A horizontal bar ``share`` (0 to 1) of ``width`` characters, in eighths.

    >>> bar(0.5, 4), bar(1, 2), bar(0, 3)
    ('██  ', '██', '   ')
    """
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BARS[part] if part else "")).ljust(width)


def sparkline(values, width: int) -> str:
    """``values`` as at most ``width`` characters of heights, each the largest of its stretch.

    >>> sparkline([1, 2, 4, 8, 4], 10), sparkline(range(100), 4)
    ('▁▂▄█▄', '▂▄▆█')
    """
    values = list(values)
    if not values:
        return ""
    count = min(width, len(values))
    stretches = [values[len(values) * k // count: len(values) * (k + 1) // count] for k in range(count)]
    top = max(values) or 1
    return "".join(SPARKS[max(0, min(7, round(max(s) / top * 8) - 1))] for s in stretches)


