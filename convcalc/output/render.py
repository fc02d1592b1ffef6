"""Laying out a ``Table``: Rich on a terminal, aligned plain text otherwise, CSV and Markdown.

Each command describes its table once (see ``convcalc.output.reports``); the
renderers only lay it out. JSON is never printed through here (Rich would
wrap it); the CLI prints it with plain ``print``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header, a totals row, and lines of notes below."""

    columns: tuple[str, ...]
    right: frozenset[str]
    rows: tuple[tuple[str, ...], ...]
    total: tuple[str, ...] | None
    footer: tuple[str, ...]
    # The same cells with exact numbers instead of human units, for CSV.
    exact_rows: tuple[tuple[str, ...], ...] | None = None
    exact_total: tuple[str, ...] | None = None


def render_plain(table: Table) -> str:
    """Aligned columns of plain text, for pipes and files.

    >>> from convcalc import analyse_tokens
    >>> from convcalc.output.reports import shape_table
    >>> print(render_plain(shape_table(analyse_tokens("3x32x32", "conv:16,k=3,p=1", "relu"))))
    #  layer                output    params  MACs   FLOPs   RF  jump
    0  input                3x32x32                           1     1
    1  Conv2d 3→16 k=3 p=1  16x32x32     448  442 K   901 K   3     1
    2  ReLU                 16x32x32       0      0  16.4 K   3     1
       total                16x32x32     448  442 K   918 K
    batch 1, float32: activations 128.00 KiB, parameters 1.75 KiB
    """
    body = [*table.rows, *([table.total] if table.total else [])]
    widths = [max(len(row[i]) for row in [table.columns, *body]) for i in range(len(table.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(table.columns, widths)).rstrip()]
    for row in body:
        cells = [cell.rjust(w) if name in table.right else cell.ljust(w)
                 for name, cell, w in zip(table.columns, row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines + list(table.footer))


def render_rich(table: Table, console) -> None:
    """Print the table with Rich on ``console``."""
    from rich.table import Table as RichTable

    rich = RichTable(header_style="bold")
    for name in table.columns:
        rich.add_column(name, justify="right" if name in table.right else "left", no_wrap=name != "layer")
    for row in table.rows:
        rich.add_row(*row)
    if table.total:
        rich.add_section()
        rich.add_row(*table.total, style="bold")
    console.print(rich)
    for line in table.footer:
        console.print(line, style="dim", highlight=False)


def render_csv(table: Table) -> str:
    """The table's header, rows and totals as CSV, with exact numbers where the
    table has them (notes are left out).

    >>> print(render_csv(Table(("a", "b"), frozenset(), (("1", "x,y"),), None, ())), end="")
    a,b
    1,"x,y"
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.exact_rows if table.exact_rows is not None else table.rows)
    total = table.exact_total if table.exact_total is not None else table.total
    if total:
        writer.writerow(total)
    return buffer.getvalue()


def render_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table, totals in bold, notes as a list below.

    >>> print(render_markdown(Table(("a", "n"), frozenset({"n"}), (("x|y", "1"),), None, ("note",))))
    | a | n |
    | --- | ---: |
    | x\\|y | 1 |
    <BLANKLINE>
    - note
    """
    def cells(row):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    lines = [cells(table.columns), "| " + " | ".join("---:" if c in table.right else "---" for c in table.columns) + " |"]
    lines += [cells(row) for row in table.rows]
    if table.total:
        lines.append(cells(tuple(f"**{c}**" if c else "" for c in table.total)))
    if table.footer:
        lines += [""] + [f"- {line}" for line in table.footer]
    return "\n".join(lines)
