"""convcalc explain: the arithmetic of each layer, with the user's numbers, and small drawings."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import fail, input_notes, output_format, wants_json
from .options import Format, Json
from .show import show
from .source import NetworkSource, reads_network
from .values import position_option

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
@reads_network
def explain_command(
    source: NetworkSource,
    at: Annotated[Optional[str], typer.Option(
        "--at", metavar="POSITION", help="The output position to draw, e.g. 0,1 (default: 0).")] = None,
    matrix: Annotated[bool, typer.Option(
        "--matrix", help="Write the (single-layer) convolution as a matrix.")] = False,
    as_json: Json = False,
    output: Format = None,
) -> None:
    """The arithmetic, shown: formulas with your numbers, products, receptive fields and small diagrams."""
    from ..verbs.explain import explain, matrix_lines

    network = None
    try:
        fmt = output_format(as_json, output)
        position = position_option(at)
        network = source.network()
        lines = explain(network, at=position)
        if matrix:
            if len(network.layers) != 1:
                raise SpecError("--matrix takes one layer", hint="e.g. convcalc explain 1x4x4 conv:1,k=3 --matrix",
                                field="matrix")
            lines += matrix_lines(network.layers[0], network.input_shape)
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output), input_notes(source, network))
    from ..output.listings import explain_result

    show(explain_result(lines), fmt)
