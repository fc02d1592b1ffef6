"""Printing a result in the chosen format: data to stdout, nothing else."""

from __future__ import annotations

import json
import sys

from ..output.formats import OutputFormat


def show(table, data: dict, output: OutputFormat, records: list | None = None) -> None:
    """Print a result in the chosen format: data to stdout, nothing else."""
    from ..output import render

    if output is OutputFormat.json:
        print(dump_json(data))
    elif output is OutputFormat.ndjson:
        for record in records if records is not None else [data]:
            print(json.dumps(record))
    elif output is OutputFormat.csv:
        print(render.render_csv(table), end="")
    elif output is OutputFormat.markdown:
        print(render.render_markdown(table))
    elif sys.stdout.isatty():
        from rich.console import Console

        render.render_rich(table, Console())
    else:
        print(render.render_plain(table))


def dump_json(data: dict) -> str:
    """The result object, indented at the top, with each item of its lists (layers, variants,
    solutions) compact on a line of its own: as readable as a full indent, and fast to write
    for networks of a million layers (Python's indenting encoder is not the C one)."""
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