"""Laying out a ``Table``: Rich on a terminal, aligned plain text otherwise, CSV and Markdown.

Each command describes its table once (see ``convcalc.output.reports``); the
renderers only lay it out. JSON is never printed through here (Rich would
wrap it); the CLI prints it with plain ``print``.

Every cell and note may hold text from the input (layer names, paths, an operation's name,
remarks): each layout function first passes its table through ``escaped`` (the engine's one
escape), and Rich is given ``rich.text.Text``, so no markup in the input is ever read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

from ..engine.escape import escape


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
    # Columns to leave out first, in order, when a terminal is too narrow (then the rightmost).
    optional: tuple[str, ...] = ()


def escaped(table: Table) -> Table:
    """``table`` with every string in it escaped: no control or format character from the input
    reaches the output (shown as ``\\x1b``, ``\\u202e``).

    >>> escaped(Table(("layer",), frozenset(), (("a\\x1b[2Jb",),), None, ("note \\u202e",))).footer
    ('note \\\\u202e',)
    """
    def cells(row):
        return None if row is None else tuple(escape(cell) for cell in row)

    return replace(table, columns=cells(table.columns), rows=tuple(cells(row) for row in table.rows),
                   total=cells(table.total), footer=cells(table.footer),
                   exact_rows=None if table.exact_rows is None else tuple(cells(row) for row in table.exact_rows),
                   exact_total=cells(table.exact_total))


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
    inference: peak activations 128.00 KiB, at layer 2
    training (adam): 83.00 KiB: saved activations 76.00 KiB, parameters 1.75 KiB,
      gradients 1.75 KiB, optimizer state 3.50 KiB
    """
    table = escaped(table)
    body = [*table.rows, *([table.total] if table.total else [])]
    widths = [max(len(row[i]) for row in [table.columns, *body]) for i in range(len(table.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(table.columns, widths)).rstrip()]
    for row in body:
        cells = [cell.rjust(w) if name in table.right else cell.ljust(w)
                 for name, cell, w in zip(table.columns, row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines + list(table.footer))


# Columns whose text may be shortened with an ellipsis when the terminal is narrow: descriptions,
# never numbers or shapes.
ABBREVIABLE = ("layer", "layers", "description", "line")
# Width Rich adds per column (a space each side, one rule) and for the table's outer rule.
_PER_COLUMN, _OUTER = 3, 1


def fit_columns(table: Table, width: int) -> list[str]:
    """The columns shown at ``width``: every number whole, descriptions shortened first; then the
    columns most to the right (after the first two) left out, until the table fits.

    >>> t = Table(("#", "layer", "output", "params", "RF"), frozenset({"#", "params", "RF"}),
    ...           (("1", "Conv2d 3→64 k=7 s=2 p=3 bias=False", "64x112x112", "9.41 K", "7"),), None, ())
    >>> fit_columns(t, 80), fit_columns(t, 45)
    (['#', 'layer', 'output', 'params', 'RF'], ['#', 'layer', 'output', 'params'])
    """
    body = [*table.rows, *([table.total] if table.total else [])]
    widths = {name: max([len(name)] + [len(row[i]) for row in body]) for i, name in enumerate(table.columns)}
    shown = list(table.columns)

    def needed(columns) -> int:
        return sum(min(widths[c], 12) if c in ABBREVIABLE else widths[c] for c in columns) + \
            _PER_COLUMN * len(columns) + _OUTER

    while needed(shown) > width and len(shown) > 2:
        removable = [c for c in shown[2:] if c not in ABBREVIABLE]
        if not removable:
            break
        preferred = [c for c in table.optional if c in removable]
        shown.remove(preferred[0] if preferred else removable[-1])
    return shown


def render_rich(table: Table, console) -> None:
    """Print the table with Rich on ``console``: at any width every number is whole (descriptions are
    shortened, then columns left out and named in a note, and at last rows are stacked)."""
    import os

    from rich.table import Table as RichTable
    from rich.text import Text

    table = escaped(table)
    plain = bool(os.environ.get("NO_COLOR"))  # no colour means no bold or dim either
    shown = fit_columns(table, console.width)
    index = [table.columns.index(c) for c in shown]
    body = [*table.rows, *([table.total] if table.total else [])]
    widths = [max([len(table.columns[i])] + [len(row[i]) for row in body]) for i in index]
    rigid = sum(w for c, w in zip(shown, widths) if c not in ABBREVIABLE)
    too_few = len(shown) < min(4, len(table.columns))  # a table that lost most of its columns says little
    if too_few or rigid + _PER_COLUMN * len(shown) + _OUTER + 3 > console.width:
        _render_stacked(table, console, plain)
        return
    # what the descriptions may take: the width left once every number has its full width
    spare = console.width - rigid - _PER_COLUMN * len(shown) - _OUTER
    flexible = [c for c in shown if c in ABBREVIABLE]
    share = {c: max(3, spare // len(flexible)) for c in flexible} if flexible else {}
    rich = RichTable(header_style="" if plain else "bold")
    for name, width in zip(shown, widths):
        shorten = name in ABBREVIABLE
        rich.add_column(name, justify="right" if name in table.right else "left", no_wrap=True,
                        overflow="ellipsis" if shorten else "fold",
                        min_width=None if shorten else width, max_width=min(width, share[name]) if shorten else None)
    for row in table.rows:
        rich.add_row(*(Text(row[i]) for i in index))
    if table.total:
        rich.add_section()
        rich.add_row(*(Text(table.total[i]) for i in index), style="" if plain else "bold")
    console.print(rich)
    left_out = [c for c in table.columns if c not in shown]
    if left_out:
        console.print(Text(f"left out at {console.width} columns: {', '.join(left_out)} (widen the terminal, or use "
                           "--format csv or --json for every column)", style="" if plain else "dim"))
    for line in table.footer:
        console.print(Text(line, style="" if plain else "dim"))


def _render_stacked(table: Table, console, plain: bool) -> None:
    """One row after another as "column: value" lines, for terminals too narrow for any table
    (``table`` is escaped already)."""
    from rich.text import Text

    body = [*table.rows, *([table.total] if table.total else [])]
    label = max(len(c) for c in table.columns)
    for row in body:
        for name, cell in zip(table.columns, row):
            if cell:
                console.print(Text(f"{name.rjust(label)}: {cell}"))
        console.print("")
    for line in table.footer:
        console.print(Text(line, style="" if plain else "dim"))


def render_csv(table: Table) -> str:
    """The table's header, rows and totals as CSV, with exact numbers where the
    table has them (notes are left out).

    >>> print(render_csv(Table(("a", "b"), frozenset(), (("1", "x,y"),), None, ())), end="")
    a,b
    1,"x,y"
    """
    table = escaped(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.exact_rows if table.exact_rows is not None else table.rows)
    total = table.exact_total if table.exact_total is not None else table.total
    if total:
        writer.writerow(total)
    return buffer.getvalue()


def render_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table, totals in bold, notes as a list below. A backslash and a
    pipe in a cell are escaped, so no cell ends early.

    >>> print(render_markdown(Table(("a", "n"), frozenset({"n"}), (("x|y", "1"), ("x\\\\|y", "2")), None, ("note",))))
    | a | n |
    | --- | ---: |
    | x\\|y | 1 |
    | x\\\\\\|y | 2 |
    <BLANKLINE>
    - note
    """
    table = escaped(table)

    def cells(row):
        return "| " + " | ".join(cell.replace("\\", "\\\\").replace("|", "\\|") for cell in row) + " |"

    lines = [cells(table.columns), "| " + " | ".join("---:" if c in table.right else "---" for c in table.columns) + " |"]
    lines += [cells(row) for row in table.rows]
    if table.total:
        lines.append(cells(tuple(f"**{c}**" if c else "" for c in table.total)))
    if table.footer:
        lines += [""] + [f"- {line}" for line in table.footer]
    return "\n".join(lines)
