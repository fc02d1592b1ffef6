"""Printing a command's result in the format asked for: data to stdout, notes and hints to stderr."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..output.formats import OutputFormat

if TYPE_CHECKING:
    from ..output.renderers import Result

# The formats whose object carries the notes as data; every other format gets them on stderr.
_NOTES_AS_DATA = (OutputFormat.json, OutputFormat.ndjson)


def show(result: Result, output: OutputFormat) -> None:
    """Print ``result`` on stdout with the renderer of ``output``; its table's notes and hints go to
    stderr (wrapped there on a terminal), unless the format carries them as data (JSON)."""
    from ..output.renderers import RENDERERS

    RENDERERS[output].render(result, sys.stdout)
    if output not in _NOTES_AS_DATA and result.table.notes and sys.stderr is not None:
        import shutil

        from ..output.render import render_notes

        sys.stdout.flush()  # the data first, where both streams reach one screen
        width = shutil.get_terminal_size().columns if sys.stderr.isatty() else None
        print(render_notes(result.table, width), file=sys.stderr)
