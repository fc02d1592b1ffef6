"""convcalc explain: the arithmetic of each layer, with the user's numbers, and small drawings."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import app
from .common import fail, network_from, output_format
from .options import BATCH, FILE, FORMAT, INPUT, JSON, LAYERS, MODEL, MODEL_ARG, PRESET
from .show import show

EXPLAIN_EXAMPLES = """
Examples:

  convcalc explain 3x224x224 conv:64,k=7,s=2,p=3

  convcalc explain 1x5x5 conv:1,k=3,s=2,p=1 maxpool:2,p=1,ceil=true --at 1,1

  # the overlap map, with the checkerboard warning
  convcalc explain 1x4x4 convT:1,k=3,s=2,p=1,op=1

  # the convolution as a matrix
  convcalc explain 1x4x4 conv:1,k=3 --matrix
"""


@app.command("explain", epilog=EXPLAIN_EXAMPLES)
def explain_command(
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    model: Optional[str] = MODEL,
    model_arg: Optional[List[str]] = MODEL_ARG,
    batch: Optional[int] = BATCH,
    at: Optional[str] = typer.Option(None, "--at", help="The output position to draw, e.g. 0,1 (default: 0)."),
    matrix: bool = typer.Option(False, "--matrix", help="Write the (single-layer) convolution as a matrix."),
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """The arithmetic, shown: formulas with your numbers, products, receptive fields and small diagrams."""
    from ..verbs.explain import explain, matrix_lines

    try:
        fmt = output_format(as_json, output)
        position = None
        if at is not None:
            parts = at.replace("x", ",").split(",")
            if not all(p.strip().isascii() and p.strip().isdigit() and len(p.strip()) <= 18 for p in parts):
                raise SpecError(f"--at {at!r} is not an output position", hint="e.g. --at 0,1", field="at")
            position = tuple(int(p) for p in parts)
        network = network_from(input_shape, layers, file, batch, None, preset, model, model_arg)
        lines = explain(network, at=position)
        if matrix:
            if len(network.layers) != 1:
                raise SpecError("--matrix takes one layer", hint="e.g. convcalc explain 1x4x4 conv:1,k=3 --matrix",
                                field="matrix")
            lines += matrix_lines(network.layers[0], network.input_shape)
    except ConvcalcError as err:
        fail(err, OutputFormat.json if as_json else output)
    text = "\n".join(lines).rstrip()
    if fmt is not OutputFormat.table:
        from ..output.render import Table

        data = {"schema": "convcalc.explain/1", "lines": text.split("\n")}
        table = Table(("line",), frozenset(), tuple((line,) for line in data["lines"]), None, ())
        show(table, data, fmt, [{"line": line} for line in data["lines"]])
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape

        Console().print(escape(text).replace("#", "[bold magenta]#[/]"), highlight=False)
    else:
        print(text)
