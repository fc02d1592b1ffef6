"""Charts as inline SVG for the HTML page: the live memory over an inference, and each layer's time
bound (or its FLOPs, without a device). Plain SVG elements, no script and nothing fetched; every
string that may come from the input is HTML-escaped here."""

from __future__ import annotations

from html import escape as html_escape

from ..engine.escape import escape
from ..engine.units import human, human_bytes, human_seconds

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 16, 44
# More points or bars than this are drawn a stretch at a time (its largest value, or its sum).
MOST = 600
COLOURS = {"compute": "#4c78a8", "memory": "#e08a2c", None: "#8c96a8"}


def _text(text: str) -> str:
    return html_escape(escape(text))


def _stretches(count: int) -> list[range]:
    """At most ``MOST`` consecutive stretches covering ``range(count)``."""
    parts = min(count, MOST)
    return [range(count * k // parts, count * (k + 1) // parts) for k in range(parts)]


def _frame(title: str, top_label: str, first: str, last: str, axis: str) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    return [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{_text(title)}">',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" class="axis"/>',
            f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" class="axis"/>',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT + plot_w}" y2="{TOP}" class="grid"/>',
            f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{_text(top_label)}</text>',
            f'<text x="{LEFT - 6}" y="{TOP + plot_h + 4}" text-anchor="end">0</text>',
            f'<text x="{LEFT}" y="{TOP + plot_h + 16}" text-anchor="start">{_text(first)}</text>',
            f'<text x="{LEFT + plot_w}" y="{TOP + plot_h + 16}" text-anchor="end">{_text(last)}</text>',
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{_text(axis)}</text>']


def memory_chart(curve, layers, names: dict) -> str:
    """The live activation bytes while each layer runs, in the order they run (``curve`` and
    ``layers`` of ``engine.memory.InferenceMemory``), its peak marked; ``names`` labels layers."""
    if not curve:
        return '<p class="empty">No layers: the input is all the memory there is.</p>'
    top = max(curve) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    stretches = _stretches(len(curve))
    step = plot_w / max(1, len(stretches) - 1) if len(stretches) > 1 else 0
    points = []
    for k, stretch in enumerate(stretches):
        value = max(curve[i] for i in stretch)
        points.append((LEFT + k * step if len(stretches) > 1 else LEFT + plot_w / 2, TOP + plot_h * (1 - value / top)))
    peak = max(range(len(curve)), key=curve.__getitem__)
    peak_k = next(k for k, stretch in enumerate(stretches) if peak in stretch)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = f"{points[0][0]:.1f},{TOP + plot_h} {line} {points[-1][0]:.1f},{TOP + plot_h}"
    where = names.get(layers[peak], f"#{layers[peak]}")
    parts = _frame("live activation memory over the run", human_bytes(top), f"layer {layers[0]}",
                   f"layer {layers[-1]}", "layers, in the order they run")
    parts += [f'<polygon points="{area}" class="area"/>',
              f'<polyline points="{line}" class="line"/>',
              f'<circle cx="{points[peak_k][0]:.1f}" cy="{points[peak_k][1]:.1f}" r="4" class="peak">'
              f'<title>{_text(f"peak {human_bytes(curve[peak])} while layer {layers[peak]} ({where}) runs")}</title>'
              "</circle>",
              f'<text x="{min(points[peak_k][0] + 8, WIDTH - RIGHT - 4):.1f}" y="{max(points[peak_k][1] + 4, TOP + 12):.1f}" '
              f'text-anchor="{"end" if points[peak_k][0] > WIDTH * 0.7 else "start"}">'
              f'{_text(f"peak {human_bytes(curve[peak])}, layer {layers[peak]}")}</text>', "</svg>"]
    return "\n".join(parts)


def bound_chart(reports, bounds, timed: bool) -> str:
    """A bar per layer (a stretch of layers past ``MOST``): its roofline time bound, coloured by what
    limits it, when ``timed``; its FLOPs otherwise. ``bounds`` are ``engine.roofline.Bound``s."""
    if not reports:
        return '<p class="empty">No layers.</p>'
    values = [(b.seconds or 0.0) if timed else r.flops for r, b in zip(reports, bounds)]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    stretches = _stretches(len(values))
    sums = [sum(values[i] for i in stretch) for stretch in stretches]
    top = max(sums) or 1
    width = plot_w / len(stretches)
    show = human_seconds if timed else (lambda n: f"{human(n)} FLOPs")
    parts = _frame("time bound per layer" if timed else "FLOPs per layer", show(top),
                   f"layer {reports[0].index}", f"layer {reports[-1].index}", "layers, in order")
    for k, stretch in enumerate(stretches):
        value = sums[k]
        limits = [bounds[i].limit for i in stretch] if timed else [None]
        limit = max(set(limits), key=limits.count)
        height = plot_h * value / top
        first, last = reports[stretch[0]], reports[stretch[-1]]
        label = (f"layer {first.index} ({first.name or first.type})" if len(stretch) == 1
                 else f"layers {first.index}-{last.index}")
        known = all(bounds[i].seconds is not None for i in stretch) if timed else True
        what = (show(value) if known else "?") + (f", {limit}-bound" if timed and limit else "")
        parts.append(f'<rect x="{LEFT + k * width:.2f}" y="{TOP + plot_h - height:.2f}" width="{max(width - 1, 0.6):.2f}" '
                     f'height="{height:.2f}" fill="{COLOURS[limit] if timed else COLOURS["compute"]}">'
                     f"<title>{_text(f'{label}: {what}')}</title></rect>")
    if timed:
        parts += [f'<rect x="{WIDTH - RIGHT - 220}" y="{TOP + 4}" width="10" height="10" fill="{COLOURS["compute"]}"/>',
                  f'<text x="{WIDTH - RIGHT - 206}" y="{TOP + 13}">compute-bound</text>',
                  f'<rect x="{WIDTH - RIGHT - 100}" y="{TOP + 4}" width="10" height="10" fill="{COLOURS["memory"]}"/>',
                  f'<text x="{WIDTH - RIGHT - 86}" y="{TOP + 13}">memory-bound</text>']
    parts.append("</svg>")
    return "\n".join(parts)
