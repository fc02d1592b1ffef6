"""Printing a result in the chosen format: data to stdout, nothing else."""

from __future__ import annotations

import json
import sys

from ..output.formats import OutputFormat


def show(table, data: dict, output: OutputFormat, records: list | None = None) -> None:
    """Print a result in the chosen format: data to stdout, nothing else."""
    from ..output import render

    if output is OutputFormat.json:
        print(json.dumps(data, indent=2))
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
