"""convcalc draw: a picture of a network, as SVG, PNG, a self-contained HTML page, DOT or Mermaid."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import device_from, fail
from .options import Bandwidth, Device, Optimizer, Peak
from .source import NetworkSource, reads_network

DRAW_EXAMPLES = """
Examples:

  convcalc draw --preset resnet18 --depth 1 -o resnet18.svg

  # a page: the graph, the layer table, the memory over the run, each layer's time bound
  convcalc draw --preset mobilenet_v2 --device a100-80gb -o mobilenet.html

  convcalc draw 3x32x32 conv:16,k=3,p=1 relu maxpool:k=2 -o net.png

  # the graph as text: Mermaid for a Markdown file, DOT for Graphviz
  convcalc draw -f net.yaml -o net.mmd
  convcalc draw -f net.yaml --as dot -o -
"""

# What each file name ends in says what is written; --as says it for -o - or any other name.
KINDS = {".svg": "svg", ".png": "png", ".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot",
         ".mmd": "mermaid", ".mermaid": "mermaid"}
NAMES = ("svg", "png", "html", "dot", "mermaid")


def _kind(path: str, forced: str | None) -> str:
    """What to write to ``path``: ``forced`` (--as), else what its name ends in (SVG for -o -)."""
    if forced is not None:
        if forced.lower() not in NAMES:
            raise SpecError(f"--as takes {', '.join(NAMES)} (got {forced[:40]!r})", hint="e.g. --as svg")
        return forced.lower()
    if path == "-":
        return "svg"
    ending = os.path.splitext(path)[1].lower()
    if ending not in KINDS:
        raise SpecError(f"cannot tell what to draw into {path[:80]!r}: give a name ending in .svg, .png, .html, "
                        ".dot or .mmd, or say it with --as")
    return KINDS[ending]


@app.command(epilog=DRAW_EXAMPLES)
@reads_network
def draw(
    source: NetworkSource,
    path: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="Where to write the picture: a name ending in .svg or .png (drawn by Graphviz's dot), .html (a "
             "self-contained page: graph, layer table, memory and time charts), .dot or .mmd (text); - for "
             "stdout. An existing file is replaced.")],
    kind: Annotated[Optional[str], typer.Option(
        "--as", metavar="KIND", help="svg, png, html, dot or mermaid, whatever FILE is called (-o - writes svg "
                                     "without it).")] = None,
    depth: Annotated[Optional[int], typer.Option(
        "--depth", metavar="N", help="Draw the layers nested deeper than N blocks in a box per block (as "
                                     "shape --depth folds them into rows).")] = None,
    optimizer: Optimizer = "adam",
    device: Device = None,
    peak: Peak = None,
    bandwidth: Bandwidth = None,
) -> None:
    """Draw a network's graph (SVG, PNG, DOT, Mermaid), or an HTML page with its table and charts."""
    try:
        what = _kind(path, kind)
        if depth is not None and depth < 0:
            raise SpecError(f"--depth must be 0 or more (got {depth})", hint="e.g. --depth 1")
        if what in ("svg", "png"):
            from ..output.graphviz import require_dot

            require_dot(what.upper())  # before any work: say so at once
        target = device_from(device, peak, bandwidth)
        payload = _draw(source, what, depth, optimizer.lower(), target)
        _write(path, payload)
    except ConvcalcError as err:
        fail(err)


def _draw(source: NetworkSource, what: str, depth: int | None, optimizer: str, device) -> bytes:
    from ..engine.analysis import analyse
    from ..output import graphs
    from ..output.reports import shape_table

    analysis = analyse(source.network())
    data = analysis.to_dict(optimizer, device)
    table = shape_table(analysis, depth, optimizer, device)
    picture = graphs.analysis_picture(analysis, table, data)
    if what == "mermaid":
        return (graphs.mermaid(picture) + "\n").encode("utf-8")
    text = graphs.dot(picture) + "\n"
    if what == "dot":
        return text.encode("utf-8")
    from ..output.graphviz import dot_program, inline_svg, run_dot

    if what != "html":
        return run_dot(text, what)
    from ..output.page import html_page

    svg = None
    if dot_program() is not None:
        svg = inline_svg(run_dot(text, "svg"))
    else:
        print("note: Graphviz's dot is not installed: the page lists the layers and what each reads instead of "
              "drawing the graph (apt-get install graphviz, or brew install graphviz)", file=sys.stderr)
    return html_page(_title(source), analysis, table, picture, svg, optimizer, device).encode("utf-8")


def _title(source: NetworkSource) -> str:
    """What the page is of: the preset, model or file, or the layers given."""
    if source.preset is not None:
        return f"preset {source.preset}"
    if source.model is not None:
        return f"model {source.model}"
    if source.file is not None:
        return "stdin" if source.file == "-" else source.file
    return " ".join((source.input_shape or "", *source.layers)).strip() or "network"


def _write(path: str, payload: bytes) -> None:
    """``payload`` into ``path`` (replacing it), or onto stdout for -."""
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    try:
        with open(path, "wb") as handle:
            handle.write(payload)
    except OSError as err:
        raise SpecError(f"cannot write {path[:80]!r}: {err.strerror}", hint="check the path") from None
