"""The HTML page ``convcalc draw -o net.html`` writes: self-contained (no script, no font, no image
and no address: nothing is fetched, and its Content-Security-Policy forbids fetching), with the
graph (dot's SVG inline, or without Graphviz a listing of the layers and what each reads), the
memory over the run and each layer's time bound as inline SVG charts, and the layer table.
Every string from the input is escaped: the engine's escape, then HTML's."""

from __future__ import annotations

from html import escape as html_escape

from ..engine.escape import escape
from ..engine.units import human, human_bytes, human_seconds
from .graphs import Picture
from .plots import bound_chart, memory_chart

# default-src 'none': the page may load nothing at all, whatever is in it; its style is inline.
POLICY = "default-src 'none'; style-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2433;
       margin: 2em auto; max-width: 1100px; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 2em; }
.summary { color: #4a5468; } nav a { margin-right: 1em; }
.graph { overflow: auto; border: 1px solid #dde2ec; border-radius: 6px; padding: .5em; max-height: 80vh; }
.graph svg { max-width: none; height: auto; }
svg.chart text { font-size: 11px; fill: #4a5468; }
svg.chart .axis { stroke: #8c96a8; } svg.chart .grid { stroke: #dde2ec; stroke-dasharray: 3 3; }
svg.chart .line { fill: none; stroke: #4c78a8; stroke-width: 1.5; }
svg.chart .area { fill: #4c78a8; fill-opacity: .15; stroke: none; } svg.chart .peak { fill: #c23b3b; }
table { border-collapse: collapse; font-size: 12.5px; } th, td { padding: 2px 8px; border-bottom: 1px solid #eef0f5; }
th { text-align: left; background: #f4f6fa; position: sticky; top: 0; } td.num, th.num { text-align: right; }
tr.total td { font-weight: 600; border-top: 2px solid #8c96a8; }
pre.notes { white-space: pre-wrap; color: #4a5468; }
ol.listing li { margin-bottom: .3em; } .muted { color: #6b7489; }
"""


def _h(text: str) -> str:
    """Text from the input, for HTML: the engine's escape (controls shown), then HTML's."""
    return html_escape(escape(str(text)))


def html_page(title: str, analysis, table, picture: Picture, svg: str | None, optimizer: str, device) -> str:
    """The page for ``analysis``: ``table`` is its ``shape_table``, ``picture`` its graph and ``svg``
    dot's drawing of it (inline form), or None where Graphviz is not installed."""
    from .. import __version__
    from ..engine.memory import inference_memory, training_memory
    from ..engine.roofline import roofline

    totals, network = analysis.totals, analysis.network
    memory, training = inference_memory(analysis), training_memory(analysis, optimizer)
    line = roofline(analysis, device)
    names = {r.index: r.name or r.type for r in analysis.layers}
    summary = (f"input {'x'.join(map(str, network.input_shape))}, batch {network.batch}, {network.dtype} · "
               f"{len(analysis.layers):,} layers · {human(totals.params)} params · {human(totals.macs)} MACs · "
               f"peak activations {human_bytes(memory.peak_bytes)} (inference) · training ({optimizer}) "
               f"{human_bytes(training.total_bytes)}")
    if device is not None:
        summary += f" · at least {human_seconds(line.seconds)} on {device.name}"
    timed = device is not None
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_h(title)} · convcalc</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{_h(title)}</h1>", f'<p class="summary">{_h(summary)}</p>',
             '<nav><a href="#graph">graph</a><a href="#memory">memory</a><a href="#time">time</a>'
             '<a href="#layers">layers</a></nav>',
             '<section id="graph"><h2>Graph</h2>', _graph(picture, svg), "</section>",
             '<section id="memory"><h2>Memory over the run</h2>',
             '<p class="muted">The activation bytes alive while each layer runs in an inference: its inputs, its '
             "new output and everything still to be read (views share their input's storage).</p>",
             memory_chart(memory.curve, memory.layers, names), "</section>",
             '<section id="time"><h2>' + ("Time bound per layer" if timed else "FLOPs per layer") + "</h2>",
             '<p class="muted">' + (_h(f"The least time each layer can take on {device.name} (roofline: its FLOPs "
                                       "at the peak, or its bytes at the bandwidth, whichever is longer). A lower "
                                       "bound, not a prediction.") if timed else
                                    "Each layer's FLOPs. Give --device (or --peak and --bandwidth) for each "
                                    "layer's time bound.") + "</p>",
             bound_chart(analysis.layers, line.layers, timed), "</section>",
             '<section id="layers"><h2>Layers</h2>', _table(table), "</section>",
             f'<p class="muted">Made by convcalc {_h(__version__)}.</p>', "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _graph(picture: Picture, svg: str | None) -> str:
    """dot's drawing, or a listing of every node and what it reads where there is none."""
    if svg is not None:
        return f'<div class="graph">{svg}</div>'
    reads: dict[str, list[str]] = {}
    for a, b in picture.edges:
        reads.setdefault(b, []).append(a)
    shown = {node.id: " · ".join(node.lines[:2]) for node in picture.nodes}
    items = []
    for node in picture.nodes:
        source = ", ".join(shown[a] for a in reads.get(node.id, ()))
        items.append(f"<li>{' — '.join(_h(line) for line in node.lines)}"
                     + (f' <span class="muted">(reads {_h(source)})</span>' if source else "") + "</li>")
    return ('<p class="muted">Graphviz\'s dot was not installed when this page was made, so the graph is listed '
            "rather than drawn: each layer and what it reads. Install Graphviz (apt-get install graphviz, brew "
            "install graphviz) and draw the page again for the picture.</p>"
            f'<ol class="listing">{"".join(items)}</ol>')


def _table(table) -> str:
    """The command's table as HTML: header, rows, the totals row and the notes below."""
    def row(cells, tag="td", css=""):
        right = ' class="num"'
        return f"<tr{css}>" + "".join(f"<{tag}{right if name in table.right else ''}>{_h(cell)}</{tag}>"
                                      for name, cell in zip(table.columns, cells)) + "</tr>"

    body = [row(table.columns, "th")] + [row(cells) for cells in table.rows]
    if table.total:
        body.append(row(table.total, css=' class="total"'))
    notes = "\n".join(_h(line) for line in table.footer)
    return f"<table>{''.join(body)}</table>" + (f'<pre class="notes">{notes}</pre>' if notes else "")
