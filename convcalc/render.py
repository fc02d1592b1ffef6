"""Showing an analysis to a person: a Rich table on a terminal, aligned plain text otherwise.

JSON is never printed through here (Rich would wrap it); the CLI prints it
with plain ``print``.
"""

from __future__ import annotations

from .analysis import Analysis
from .layers.base import format_shape
from .units import human, human_bytes, per_axis_text

COLUMNS = ("#", "layer", "output", "params", "MACs", "FLOPs", "RF", "jump")
RIGHT = {"#", "params", "MACs", "FLOPs", "RF", "jump"}


def rows(analysis: Analysis) -> list[tuple[str, ...]]:
    """The table's cells, one tuple per layer, then the totals row."""
    out = [("0", "input", format_shape(analysis.network.input_shape), "", "", "", "1", "1")]
    for r in analysis.layers:
        layer = f"{r.type} {r.summary}".strip()
        rf = r.receptive_field
        out.append((str(r.index), layer, format_shape(r.output_shape), human(r.params), human(r.macs), human(r.flops),
                    per_axis_text(rf.size), per_axis_text(rf.jump)))
    totals = analysis.totals
    out.append(("", "total", format_shape(analysis.output_shape), human(totals.params), human(totals.macs),
                human(totals.flops), "", ""))
    return out


def footer(analysis: Analysis) -> list[str]:
    """Lines under the table: batch and memory, then every layer's notes."""
    totals = analysis.totals
    network = analysis.network
    lines = [
        f"batch {network.batch}, {network.dtype}: activations {human_bytes(totals.activation_bytes)}, "
        f"parameters {human_bytes(totals.param_bytes)}"
    ]
    for r in analysis.layers:
        lines.extend(f"note (layer {r.index}): {note}" for note in r.notes)
    return lines


def render_plain(analysis: Analysis) -> str:
    """Aligned columns of plain text, for pipes and files.

    >>> from convcalc import analyse_tokens
    >>> print(render_plain(analyse_tokens("3x32x32", "conv:16,k=3,p=1", "relu")))
    #  layer                output    params  MACs   FLOPs   RF  jump
    0  input                3x32x32                           1     1
    1  Conv2d 3→16 k=3 p=1  16x32x32     448  442 K   901 K   3     1
    2  ReLU                 16x32x32       0      0  16.4 K   3     1
       total                16x32x32     448  442 K   918 K
    batch 1, float32: activations 128.00 KiB, parameters 1.75 KiB
    """
    table = [COLUMNS, *rows(analysis)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = []
    for row in table:
        cells = [cell.rjust(w) if COLUMNS[i] in RIGHT and row is not table[0] else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines + footer(analysis))


def render_rich(analysis: Analysis, console) -> None:
    """Print the analysis as a Rich table on ``console``."""
    from rich.table import Table

    table = Table(show_footer=False, header_style="bold")
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in RIGHT else "left", no_wrap=name != "layer")
    body = rows(analysis)
    for row in body[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*body[-1], style="bold")
    console.print(table)
    for line in footer(analysis):
        console.print(line, style="dim", highlight=False)
