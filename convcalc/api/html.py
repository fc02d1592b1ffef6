"""A summary as one self-contained HTML table, for Jupyter: every layer's name, type, output shape,
parameters and MACs, the totals, and the notes ``convcalc shape`` prints below its table (memory
of an inference and of a training step, frozen parameters, uncounted layers, each layer's notes).

Every string that may come from the input (names, types, summaries, notes) goes through the
engine's one escape (control and format characters shown) and then ``html.escape``, so no name
can open a tag. No script, no stylesheet: inline styles only, so the table survives export.

>>> from convcalc import analyse_tokens
>>> page = summary_html(analyse_tokens("3x8x8", "conv:4,k=3"), "tokens", "adam")
>>> ">Conv2d</td>" in page, ">MACs</th>" in page, ">3,888</td>" in page
(True, True, True)
"""

from __future__ import annotations

from html import escape as html_escape

from ..engine.escape import escape
from ..engine.layers.base import format_shape

_COLUMNS = ("#", "name", "type", "details", "output shape", "params", "MACs", "FLOPs")
_NUMBERS = frozenset({"#", "params", "MACs", "FLOPs"})
_CELL = "padding:1px 8px;"


def text(value) -> str:
    """``value`` safe in HTML: control characters shown as the tables show them, markup escaped.

    >>> text("<script>alert(1)</script>\\x1b")
    '&lt;script&gt;alert(1)&lt;/script&gt;\\\\x1b'
    """
    return html_escape(escape(str(value)), quote=True)


def _row(columns, cells, right, tag: str = "td", style: str = "") -> str:
    parts = []
    for name, cell in zip(columns, cells):
        align = "text-align:right;" if name in right else "text-align:left;"
        parts.append(f'<{tag} style="{_CELL}{align}{style}">{text(cell)}</{tag}>')
    return "<tr>" + "".join(parts) + "</tr>"


def summary_html(analysis, label: str, optimizer: str = "adam", device=None, depth: int | None = None) -> str:
    """The HTML of ``analysis``: a caption naming ``label`` and the input, a row per layer (exact
    figures), the totals, and the notes of the command line's table (``shape_table``'s footer).
    With ``depth``, the rows are the command line's folded rows (``--depth``), with exact figures."""
    from ..output.reports import shape_table

    network, totals = analysis.network, analysis.totals
    caption = (f"{label}: input {network.batch}x{format_shape(network.input_shape)}, {network.dtype}, "
               f"{len(analysis.layers)} layer{'s' * (len(analysis.layers) != 1)}")
    table = shape_table(analysis, depth, optimizer, device)
    if depth is None:
        columns, right = _COLUMNS, _NUMBERS
        body = [("0", "", "input", "", format_shape(network.input_shape), "", "", "")]
        for r in analysis.layers:
            unknown = not r.counted
            body.append((r.index, r.name or "", r.type, r.summary, format_shape(r.output_shape), f"{r.params:,}",
                         "?" if unknown else f"{r.macs:,}", "?" if unknown else f"{r.flops:,}"))
        total = ("", "", "total", "", format_shape(analysis.output_shape), f"{totals.params:,}", f"{totals.macs:,}",
                 f"{totals.flops:,}")
    else:  # the folded rows, as the command line shows them, with whole numbers grouped by thousands
        columns, right = table.columns, table.right
        body = [_grouped(row, columns, right) for row in table.exact_rows]
        total = _grouped(table.exact_total, columns, right)
    header = "".join(f'<th style="{_CELL}text-align:{"right" if c in right else "left"};">{text(c)}</th>'
                     for c in columns)
    rows = "".join(_row(columns, cells, right) for cells in body)
    listed = "".join(f"<li>{text(line.strip())}</li>" for line in _joined(table.footer))
    return (f'<div class="convcalc-summary">'
            f'<table style="border-collapse:collapse;font-variant-numeric:tabular-nums;">'
            f'<caption style="text-align:left;font-weight:bold;">{text(caption)}</caption>'
            f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody>"
            f"<tfoot>{_row(columns, total, right, 'th', 'border-top:1px solid;')}</tfoot></table>"
            f'<ul style="margin:4px 0;">{listed}</ul></div>')


def _grouped(row, columns, right) -> tuple[str, ...]:
    """A row's whole numbers in its number columns written with thousands separators (not the # column)."""
    return tuple(f"{int(cell):,}" if name in right and name != "#" and cell.isdigit() else cell
                 for name, cell in zip(columns, row))


def _joined(lines) -> list[str]:
    """The footer's lines, each continuation (an indented line) joined to the line it continues."""
    joined: list[str] = []
    for line in lines:
        if line.startswith("  ") and joined:
            joined[-1] = f"{joined[-1]} {line.strip()}"
        else:
            joined.append(line)
    return joined
