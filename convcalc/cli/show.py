"""Printing a command's result in the format asked for: data to stdout, nothing else."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..output.formats import OutputFormat

if TYPE_CHECKING:
    from ..output.renderers import Result


def show(result: Result, output: OutputFormat) -> None:
    """Print ``result`` on stdout with the renderer of ``output``."""
    from ..output.renderers import RENDERERS

    RENDERERS[output].render(result, sys.stdout)
