"""Laying out a ``Table``: Rich on a terminal, aligned plain text otherwise, CSV and Markdown.

Each command describes its table once (see ``convcalc.output.reports``); the
renderers only lay it out. JSON is never printed through here (Rich would
wrap it); the CLI prints it with plain ``print``.

Every cell and note may hold text from the input (layer names, paths, an operation's name,
remarks): each layout function first passes its table through ``escaped`` (the engine's one
escape), and Rich is given ``rich.text.Text``, so no markup in the input is ever read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

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
    # Notes and hints about the figures: printed on stderr, never among the data (JSON carries them as data).
    notes: tuple[str, ...] = ()
    # Shorter cells a terminal shows for a column (by name) when its full text does not fit.
    short: dict | None = field(default=None, compare=False)


def escaped(table: Table) -> Table:
    """``table`` with every string in it escaped: no control or format character from the input
    reaches the output (shown as ``\\x1b``, ``\\u202e``).

    >>> escaped(Table(("layer",), frozenset(), (("a\\x1b[2Jb",),), None, ("note \\u202e",))).footer
    ('note \\\\u202e',)
    """
    def cells(row):
        return None if row is None else tuple(escape(cell) for cell in row)

    return replace(table, columns=cells(table.columns), rows=tuple(cells(row) for row in table.rows),
                   total=cells(table.total), footer=cells(table.footer), notes=cells(table.notes),
                   short=None if table.short is None else {k: cells(v) for k, v in table.short.items()},
                   exact_rows=None if table.exact_rows is None else tuple(cells(row) for row in table.exact_rows),
                   exact_total=cells(table.exact_total))


def render_plain(table: Table) -> str:
    """Aligned columns of plain text, for pipes and files.

    >>> from convcalc import analyse_tokens
    >>> from convcalc.output.reports import shape_table
    >>> print(render_plain(shape_table(analyse_tokens("3x32x32", "conv:16,k=3,p=1", "relu"))))
    #  name   layer                output    params  MACs   FLOPs   RF  jump
    0  input                       3x32x32                           1     1
    1  1      Conv2d 3→16 k=3 p=1  16x32x32     448  442 K   901 K   3     1
    2  2      ReLU                 16x32x32       0      0  16.4 K   3     1
              total                16x32x32     448  442 K   918 K
    batch 1, float32: activations 128.00 KiB, parameters 1.75 KiB
    inference: peak activations 128.00 KiB, at layer 2
    training (adam): 83.00 KiB: saved activations 76.00 KiB, parameters 1.75 KiB,
      gradients 1.75 KiB, optimizer state 3.50 KiB
    training step: 885 K MACs (forward 442 K + backward 442 K)
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
# The column that tells rows apart (a layer's module path or name): kept whole while any other column can
# give way; only past that is it shortened, from the left (the end of a path is what differs).
NAME = "name"
# What a description keeps while columns are left out (beside a name column, which tells the rows apart,
# less), and at least, once every column that may go has gone.
_FLOOR, _FLOOR_BESIDE_NAMES, _LEAST = 12, 8, 3
# Width Rich adds per column (a space each side, one rule) and for the table's outer rule.
_PER_COLUMN, _OUTER = 3, 1


def _widths(table: Table) -> dict[str, int]:
    body = [*table.rows, *([table.total] if table.total else [])]
    return {name: max([len(name)] + [len(row[i]) for row in body]) for i, name in enumerate(table.columns)}


def fit_columns(table: Table, width: int) -> list[str]:
    """The columns shown at ``width``: every number whole, descriptions shortened first; then the
    optional columns left out, in their order; then names shortened (never left out); and only then
    the columns most to the right (after the first two) left out, until the table fits.

    >>> t = Table(("#", "layer", "output", "params", "RF"), frozenset({"#", "params", "RF"}),
    ...           (("1", "Conv2d 3→64 k=7 s=2 p=3 bias=False", "64x112x112", "9.41 K", "7"),), None, ())
    >>> fit_columns(t, 80), fit_columns(t, 45)
    (['#', 'layer', 'output', 'params', 'RF'], ['#', 'layer', 'output', 'params'])
    """
    widths = _widths(table)
    shown = list(table.columns)
    named = NAME in widths
    floor = _FLOOR_BESIDE_NAMES if named else _FLOOR  # beside names, descriptions give way further

    def needed(columns, name: int) -> int:
        return sum(min(widths[c], floor) if c in ABBREVIABLE else min(widths[c], name) if c == NAME else widths[c]
                   for c in columns) + _PER_COLUMN * len(columns) + _OUTER

    # names keep what tells them apart (their numbers and last part) while the optional columns go
    keep = _name_room(table) if named else 0
    for column in table.optional:
        if needed(shown, keep) <= width:
            break
        if column in shown[2:]:
            shown.remove(column)
    while needed(shown, min(keep, _NAME_FLOOR)) > width and len(shown) > 2:
        removable = [c for c in shown[2:] if c not in ABBREVIABLE and c != NAME]
        if not removable:
            break
        shown.remove(removable[-1])
    return shown


def _name_room(table: Table) -> int:
    """The width the names need with every dotted part but the last shortened (``features.1.0`` to
    ``f.1.0``): what still tells them apart."""
    if NAME not in table.columns:
        return 0
    column = table.columns.index(NAME)
    return max([len(NAME), _NAME_FLOOR] + [len(_abbreviated(row[column])) for row in table.rows])


def _abbreviated(text: str) -> str:
    body = text.lstrip(" ")
    parts = body.split(".")
    for i, word in enumerate(parts[:-1]):
        digits = word[len(word.rstrip("0123456789")):]
        parts[i] = word[0] + digits if len(word) > len(digits) + 1 else word
    return text[: len(text) - len(body)] + ".".join(parts)


# What a name keeps at least, shortened (past that, the rows are stacked).
_NAME_FLOOR = 10


def shorten_name(text: str, width: int) -> str:
    """A module path in ``width`` characters that still tells it apart: each dotted part before the
    last shortened to its first letter and its number (``layer1`` to ``l1``, ``features`` to ``f``),
    from the left, its indentation given up where it must be; then its start cut.

    >>> shorten_name("features.1.0.block.0.0", 12), shorten_name("layer1.0.downsample.0", 12)
    ('f.1.0.b.0.0', 'l1.0.d.0')
    >>> shorten_name("    layer3.1.conv2", 12), shorten_name("conv1", 12), shorten_name("a_very_long_name", 10)
    ('  l3.1.conv2', 'conv1', '…long_name')
    """
    if len(text) <= width:
        return text
    body = text.lstrip(" ")
    indent = text[: len(text) - len(body)]
    parts = body.split(".")
    for i in range(len(parts) - 1):
        if len(indent) + len(".".join(parts)) <= width:
            break
        word = parts[i]
        digits = word[len(word.rstrip("0123456789")):]
        if len(word) > len(digits) + 1:
            parts[i] = word[0] + digits
    body = ".".join(parts)
    while indent and len(indent) + len(body) > width:
        indent = indent[:-2]
    room = width - len(indent)
    return indent + (body if len(body) <= room else "…" + body[len(body) - room + 1:])


# A space between a number and its unit (9.41 K, 48.75 MiB, 19.5 TFLOP/s, 3.2 ms): never a line break.
_NUMBER_UNIT = re.compile(r"(?<=\d) (?=(?:[KMGTPE]i?B|B|[KMGTPE](?:FLOP)?|FLOP|[mµn]?s)(?![A-Za-z]))")
_GLUE = "\x00"  # holds such a space while lines are wrapped: escaped text never holds it


def wrap_line(line: str, width: int, indent: str = "  ") -> list[str]:
    """``line`` wrapped at ``width`` at spaces, never between a number and its unit; lines after the
    first indented by two.

    >>> wrap_line("training (adam): 472.10 MiB: saved activations 82.13 MiB, parameters 48.75 MiB,", 58)
    ['training (adam): 472.10 MiB: saved activations 82.13 MiB,', '  parameters 48.75 MiB,']
    >>> wrap_line("parameters 48.75 MiB", 17)
    ['parameters', '  48.75 MiB']
    """
    import textwrap

    glued = _NUMBER_UNIT.sub(_GLUE, line)
    lines = textwrap.wrap(glued, max(width, 8), subsequent_indent=indent, break_on_hyphens=False,
                          drop_whitespace=True) or [""]
    return [part.replace(_GLUE, " ") for part in lines]


def render_notes(table: Table, width: int | None = None) -> str:
    """The table's notes and hints, for stderr (escaped; wrapped at ``width`` for a terminal).

    >>> print(render_notes(Table(("a",), frozenset(), (), None, (), notes=("note (layer 1): 48.75 MiB",)), 24))
    note (layer 1):
      48.75 MiB
    """
    lines = escaped(table).notes
    if width is not None:
        lines = tuple(part for line in lines for part in wrap_line(line, width))
    return "\n".join(lines)


def render_rich(table: Table, console) -> None:
    """Print the table with Rich on ``console``: at any width every number is whole (descriptions are
    shortened, then columns left out and named in a note, then names shortened from their start, and
    at last rows are stacked); no line breaks between a number and its unit."""
    import os

    from rich.table import Table as RichTable
    from rich.text import Text

    table = escaped(table)
    plain = bool(os.environ.get("NO_COLOR"))  # no colour means no bold or dim either
    shown = fit_columns(table, console.width)
    index = [table.columns.index(c) for c in shown]
    widths = dict(zip(shown, (_widths(table)[c] for c in shown)))
    rigid = sum(w for c, w in widths.items() if c not in ABBREVIABLE and c != NAME)
    flexible = [c for c in shown if c in ABBREVIABLE]
    # what the names and descriptions may take: the width left once every number has its full width
    spare = console.width - rigid - _PER_COLUMN * len(shown) - _OUTER
    # the names whole if they can be; else shortened (not below what tells them apart) before descriptions are
    wanted = sum(min(widths[c], _FLOOR_BESIDE_NAMES) for c in flexible)  # descriptions give way to names first
    name_width = min(widths.get(NAME, 0), max(_name_room(table), spare - wanted), max(0, spare - _LEAST * len(flexible)))
    too_few = len(shown) < min(4, len(table.columns))  # a table that lost most of its columns says little
    if too_few or spare < _LEAST * len(flexible) or (NAME in widths and name_width < min(widths[NAME], _NAME_FLOOR)):
        _render_stacked(table, console, plain)
        return
    share = {c: max(_LEAST, (spare - name_width) // len(flexible)) for c in flexible} if flexible else {}
    columns = {name: [row[i] for row in table.rows] for name, i in zip(shown, index)}
    for name in flexible:  # a shorter text where the full one would be cut
        if table.short and name in table.short and widths[name] > share[name]:
            columns[name] = list(table.short[name])
            widths[name] = max([len(name)] + [len(c) for c in columns[name]] +
                               ([len(table.total[table.columns.index(name)])] if table.total else []))
    if NAME in columns and name_width < widths[NAME]:
        columns[NAME] = [shorten_name(cell, name_width) for cell in columns[NAME]]
        widths[NAME] = name_width
    rich = RichTable(header_style="" if plain else "bold")
    for name in shown:
        shorten = name in ABBREVIABLE
        rich.add_column(name, justify="right" if name in table.right else "left", no_wrap=True,
                        overflow="ellipsis" if shorten else "fold", min_width=None if shorten else widths[name],
                        max_width=min(widths[name], share[name]) if shorten else None)
    for number in range(len(table.rows)):
        rich.add_row(*(Text(columns[name][number]) for name in shown))
    if table.total:
        rich.add_section()
        rich.add_row(*(Text(table.total[i]) for i in index), style="" if plain else "bold")
    console.print(rich)
    _print_lines(console, table.footer, plain)
    left_out = [c for c in table.columns if c not in shown]
    if left_out:  # a hint, not data: on stderr when the table is on stdout
        _print_lines(_hint_console(console), [f"left out at {console.width} columns: {', '.join(left_out)} (widen "
                                              "the terminal, or use --format csv or --json for every column)"], plain)


def _hint_console(console):
    """Where a hint about a table goes: stderr, at the table's width, when the table goes to stdout."""
    import sys

    from rich.console import Console

    if console.file is not sys.stdout or sys.stderr is None:
        return console
    sys.stdout.flush()
    return Console(file=sys.stderr, width=console.width, force_terminal=console.is_terminal,
                   no_color=console.no_color)


def _print_lines(console, lines, plain: bool) -> None:
    """Lines below a table, wrapped at the console's width, never between a number and its unit."""
    from rich.text import Text

    for line in lines:
        for part in wrap_line(line, console.width):
            console.print(Text(part, style="" if plain else "dim"), no_wrap=True, crop=False)


def _render_stacked(table: Table, console, plain: bool) -> None:
    """One row after another as "column: value" lines, for terminals too narrow for any table
    (``table`` is escaped already)."""
    from rich.text import Text

    body = [*table.rows, *([table.total] if table.total else [])]
    label = max(len(c) for c in table.columns)
    for row in body:
        for name, cell in zip(table.columns, row):
            if cell:
                for part in wrap_line(f"{name.rjust(label)}: {cell}", console.width, indent=""):
                    console.print(Text(part), no_wrap=True, crop=False)
        console.print("")
    _print_lines(console, table.footer, plain)


def render_csv(table: Table) -> str:
    """The table's header, rows and totals as CSV, with exact numbers where the
    table has them (the lines below the table are left out; notes go to stderr).

    >>> print(render_csv(Table(("a", "b"), frozenset(), (("1", "x,y"),), None, ())), end="")
    a,b
    1,"x,y"
    """
    import csv
    import io

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
    """A GitHub-flavoured Markdown table, totals in bold, the lines below the table as a list (notes go to
    stderr). A backslash and a
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
