"""One renderer per output format, behind one interface: ``RENDERERS[format].render(result, out)``.

A command's ``Result`` holds everything any format needs (its table, its JSON object, the records
ndjson prints one a line); each renderer takes what its format shows. JSON is written with the
``json`` module, never through Rich (which would wrap it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import ClassVar, TextIO

from ..engine.escape import escape
from .formats import OutputFormat
from .render import Table, render_csv, render_markdown, render_plain, render_rich


@dataclass(frozen=True)
class Result:
    """What a command prints, in whatever format was asked for."""

    table: Table
    data: dict  # the command's JSON object
    records: list | None = None  # one object per row, for ndjson (default: the object itself)
    # Text the table format prints instead of the table (explain's drawings); its # cells are marked.
    text: str | None = None


class Renderer:
    """Writes a ``Result`` in one format."""

    format: ClassVar[OutputFormat]

    def render(self, result: Result, out: TextIO) -> None:
        raise NotImplementedError


class TableRenderer(Renderer):
    """Rich on a terminal (colour unless NO_COLOR), aligned plain text otherwise; text from the input
    escaped either way (``render.escaped``), and never read as Rich markup."""

    format = OutputFormat.table

    def render(self, result: Result, out: TextIO) -> None:
        terminal = out.isatty()
        if terminal:
            from rich.console import Console

            console = Console(file=out)
        if result.text is not None:
            text = "\n".join(escape(line) for line in result.text.split("\n"))
            if terminal:
                from rich.text import Text

                shown = Text(text)  # never markup: the text quotes the input
                shown.highlight_regex("#", "bold magenta")
                console.print(shown)
            else:
                print(text, file=out)
        elif terminal:
            render_rich(result.table, console)
        else:
            print(render_plain(result.table), file=out)


class JsonRenderer(Renderer):
    """The command's JSON object."""

    format = OutputFormat.json

    def render(self, result: Result, out: TextIO) -> None:
        print(dump_json(result.data), file=out)


class NdjsonRenderer(Renderer):
    """One JSON object a line: one per row (layer, variant, solution, preset, line)."""

    format = OutputFormat.ndjson

    def render(self, result: Result, out: TextIO) -> None:
        for record in result.records if result.records is not None else [result.data]:
            print(json.dumps(record), file=out)


class CsvRenderer(Renderer):
    """The table's header, rows and totals, with exact numbers."""

    format = OutputFormat.csv

    def render(self, result: Result, out: TextIO) -> None:
        print(render_csv(result.table), end="", file=out)


class MarkdownRenderer(Renderer):
    """A GitHub-flavoured Markdown table, notes as a list below."""

    format = OutputFormat.markdown

    def render(self, result: Result, out: TextIO) -> None:
        print(render_markdown(result.table), file=out)


class MermaidRenderer(Renderer):
    """The network's graph as a Mermaid flowchart (``output/graphs.py``)."""

    format = OutputFormat.mermaid

    def render(self, result: Result, out: TextIO) -> None:
        from .graphs import mermaid

        print(mermaid(_picture(result, self.format)), file=out)


class DotRenderer(Renderer):
    """The network's graph as a Graphviz digraph (``output/graphs.py``)."""

    format = OutputFormat.dot

    def render(self, result: Result, out: TextIO) -> None:
        from .graphs import dot

        print(dot(_picture(result, self.format)), file=out)


def _picture(result: Result, output: OutputFormat):
    """The picture of ``result``; a result without a network (solve, explain, presets) is refused as
    bad usage is: one error line on stderr, exit 2."""
    from .graphs import picture_of

    picture = picture_of(result.table, result.data)
    if picture is None:
        from ..engine.errors import SpecError

        print(SpecError(f"--format {output.value} draws a network, and this command's result is not one",
                        hint="draw with convcalc shape, run, compare or draw").format(),
              file=sys.stderr)
        raise SystemExit(2)  # the command line's exit code for bad usage (cli.app.ExitCode.USAGE)
    return picture


RENDERERS: dict[OutputFormat, Renderer] = {r.format: r for r in (
    TableRenderer(), JsonRenderer(), NdjsonRenderer(), CsvRenderer(), MarkdownRenderer(), MermaidRenderer(),
    DotRenderer())}


def dump_json(data: dict) -> str:
    """The result object, indented at the top, with each item of its lists (layers, variants,
    solutions) compact on a line of its own: as readable as a full indent, and fast to write
    for networks of a million layers (Python's indenting encoder is not the C one).

    >>> print(dump_json({"schema": "x/1", "layers": [{"a": 1}, {"a": 2}], "n": None}))
    {
      "schema": "x/1",
      "layers": [
        {"a": 1},
        {"a": 2}
      ],
      "n": null
    }
    """
    lines = ["{"]
    items = list(data.items())
    for position, (key, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"  {json.dumps(key)}: [")
            lines.extend(f"    {json.dumps(v)}{',' if i < len(value) - 1 else ''}" for i, v in enumerate(value))
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines)
