"""Pictures of a network's graph as text: a Mermaid flowchart and a Graphviz digraph.

A ``Picture`` is made from what a command prints (its ``convcalc.shape/1`` object and its table):
one node per layer (its name, type, output shape, params and MACs), an edge for every input a
layer reads, an output node for every result, and a subgraph for each row of the table that folds
several layers (``--depth``). Node and subgraph ids are generated (``n3``, ``c1``), never taken from
the input; every string from the input goes through the engine's escape and then the escape of the
language it is written in (``mermaid_text``, ``dot_text``), so no name can end a label early.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from ..engine.escape import escape
from ..engine.layers.base import format_shape
from ..engine.units import human


@dataclass(frozen=True)
class Node:
    """A box: ``lines`` of text as the input has them (the writers escape them); ``kind`` is
    "input", "layer" or "output"."""

    id: str
    lines: tuple[str, ...]
    kind: str = "layer"


@dataclass(frozen=True)
class Cluster:
    """A subgraph: the layers one row of the table folds, under that block's title."""

    id: str
    title: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Picture:
    """Nodes, the edges between them (by id) and the clusters grouping some of them."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    clusters: tuple[Cluster, ...] = ()


def picture_of(table, data: dict, reads: dict | None = None, outputs=None) -> Picture | None:
    """The picture of a command's result: a network's layers (``shape``, ``run``, ``draw``), or
    each variant of ``compare`` in a subgraph of its own; None for a result that holds no network.

    ``reads`` (layer index -> the indices it reads, 0 for the input) and ``outputs`` (the indices
    the network returns) are the analysis's own where the caller has them; without them they are
    read from the object's ``from`` lists, and the outputs are the last layer and every layer no
    other reads (the object does not name the outputs: one that a later layer also reads is drawn
    only as read there; ``convcalc draw`` passes the network's own).

    >>> from convcalc import analyse_tokens
    >>> from convcalc.output.reports import shape_table
    >>> analysis = analyse_tokens("3x8x8", "conv:4,k=3", "relu")
    >>> print(mermaid(picture_of(shape_table(analysis), analysis.to_dict())))
    flowchart TD
      n0(["input
    3x8x8"])
      n1["#35;1
    Conv2d 3→4 k=3
    4x6x6 · 112 params · 3.89 K MACs"]
      n2["#35;2
    ReLU
    4x6x6 · 0 params · 0 MACs"]
      o1(["output"])
      n0 --> n1
      n1 --> n2
      n2 --> o1
    """
    layers = data.get("layers")
    if isinstance(layers, list):
        return _network(layers, data.get("input_shape"), _folds(table, layers), reads, outputs)
    variants = data.get("variants")
    if isinstance(variants, list):
        nodes, edges, clusters = [], [], []
        for number, variant in enumerate(v for v in variants if v.get("layers")):
            part = _network(variant["layers"], data.get("input_shape"), (), prefix=f"v{number + 1}")
            nodes.extend(part.nodes)
            edges.extend(part.edges)
            clusters.append(Cluster(f"c{number + 1}", str(variant.get("name", "")).replace("_", " "),
                                    tuple(node.id for node in part.nodes)))
        return Picture(tuple(nodes), tuple(edges), tuple(clusters))
    return None


def analysis_picture(analysis, table, data: dict) -> Picture:
    """The picture of ``analysis`` (its ``table`` and JSON ``data``), wired as analysed: each
    layer's inputs and the network's outputs as the engine resolved them."""
    from ..engine.graph import INPUT, result_layers
    from ..engine.memory import wiring

    sources, _ = wiring(analysis)
    reads = {i + 1: tuple(0 if s == INPUT else s + 1 for s in read) for i, read in enumerate(sources)}
    outputs = sorted(i + 1 for i in result_layers(analysis.network.layers, analysis.network.outputs))
    return picture_of(table, data, reads, outputs)


def _network(layers: list, input_shape, folds, reads=None, outputs=None, prefix: str = "") -> Picture:
    indices = [int(record.get("index", position + 1)) for position, record in enumerate(layers)]
    nodes = [Node(f"{prefix}n0", ("input", format_shape(input_shape or ())), "input")]
    for index, record in zip(indices, layers):
        nodes.append(Node(f"{prefix}n{index}", _lines(index, record)))
    if reads is None:
        reads = _reads(indices, layers)
    edges = [(f"{prefix}n{source}", f"{prefix}n{index}") for index in indices for source in reads.get(index, ())]
    if outputs is None:
        read = {source for sources in reads.values() for source in sources}
        outputs = [index for index in indices if index not in read or index == indices[-1]]
    for number, index in enumerate(sorted(outputs)):
        nodes.append(Node(f"{prefix}o{number + 1}", ("output",), "output"))
        edges.append((f"{prefix}n{index}", f"{prefix}o{number + 1}"))
    clusters = tuple(Cluster(f"{prefix}c{number + 1}", title, tuple(f"{prefix}n{i}" for i in members))
                     for number, (title, members) in enumerate(folds))
    return Picture(tuple(nodes), tuple(edges), clusters)


def _lines(index: int, record: dict) -> tuple[str, ...]:
    """A layer's box: its name (#n without one), type and summary, and output, params and MACs."""
    name = record.get("name")
    kind = str(record.get("type", "?")) + (f" {record['summary']}" if record.get("summary") else "")
    macs = human(record["macs"]) if record.get("counted", True) and "macs" in record else "?"
    figures = f"{format_shape(record.get('output_shape') or ())} · {human(record.get('params', 0))} params · " \
              f"{macs} MACs"
    return (f"#{index}" if name is None else str(name), kind, figures)


def _reads(indices: list[int], layers: list) -> dict[int, tuple[int, ...]]:
    """What each layer reads, from the ``from`` labels the object gives: ``input``, a name, or ``#n``
    for an unnamed layer (as ``engine.graph.label`` writes them); the layer before when there are none."""
    named = {record["name"]: index for index, record in zip(indices, layers) if record.get("name") is not None}
    unnamed = {index for index, record in zip(indices, layers) if record.get("name") is None}
    reads = {}
    for position, (index, record) in enumerate(zip(indices, layers)):
        found = []
        for label in record.get("from") or (["input"] if position == 0 else [f"#{indices[position - 1]}"]):
            if label == "input":
                found.append(0)
            elif label in named:
                found.append(named[label])
            elif re.fullmatch(r"#\d+", str(label)) and int(label[1:]) in unnamed:
                found.append(int(label[1:]))
        reads[index] = tuple(found)
    return reads


def _folds(table, layers: list) -> list[tuple[str, list[int]]]:
    """The rows of the table that fold several layers (``5-11`` in its # column): each a block's
    title and the layers in it. The title is the innermost block all of them sit in, or the network."""
    if table is None or "#" not in table.columns:
        return []
    column = table.columns.index("#")
    paths = {int(record.get("index", position + 1)): list(record.get("path") or ())
             for position, record in enumerate(layers)}
    folds = []
    for row in table.rows:
        span = re.fullmatch(r"(\d+)-(\d+)", row[column])
        if span is None:
            continue
        members = [i for i in range(int(span[1]), int(span[2]) + 1) if i in paths]
        shared = paths[members[0]] if members else []
        for i in members[1:]:
            shared = shared[:next((k for k, (a, b) in enumerate(zip(shared, paths[i])) if a != b),
                                  min(len(shared), len(paths[i])))]
        title = shared[-1] if shared else "network"
        folds.append((f"{title} ({len(members)} layer{'s' * (len(members) != 1)})", members))
    return folds


# Characters written as they are in a Mermaid label; any other ASCII character becomes an entity
# code (#34; for a quote), so none can close the label, start markup, a comment or a directive, nor
# meet Mermaid's own rewriting of the text (a line with "style", ":", "#" and ";" loses its last ";").
# Mermaid carries entity codes through its parser as ﬂ°°60¶ß, and turns any such run back into one
# (a < from ﬂ°°60¶ß, however it was written): the two characters that start them are shown as codes.
_MERMAID_PLAIN = frozenset(string.ascii_letters + string.digits + " .,_-+/=()'")
_MERMAID_SHOWN = {"ﬂ": "\\ufb02", "¶": "\\xb6"}


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label: the engine's escape (controls and newlines shown as
    ``\\x1b``, ``\\x0a``), then Mermaid's entity codes for every ASCII sign that could mean something.

    >>> mermaid_text('a"];<script>`\\n')
    'a#34;#93;#59;#60;script#62;#96;#92;x0a'
    """
    text = escape(text)
    if "ﬂ" in text or "¶" in text:
        text = text.replace("ﬂ", _MERMAID_SHOWN["ﬂ"]).replace("¶", _MERMAID_SHOWN["¶"])
    return "".join(ch if ch in _MERMAID_PLAIN or ord(ch) > 127 else f"#{ord(ch)};" for ch in text)


def dot_text(text: str) -> str:
    """``text`` for a quoted DOT string: the engine's escape, then backslashes doubled (so no
    ``\\n``, ``\\l`` or ``\\N`` of the input is read as Graphviz's), quotes escaped, and ampersands
    written ``&amp;`` (Graphviz reads HTML entities in labels: ``&lt;`` would show as ``<``).

    >>> print(dot_text('a"];\\n'))
    a\\"];\\\\x0a
    """
    return escape(text).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def mermaid(picture: Picture) -> str:
    """A Mermaid flowchart (``flowchart TD``), as GitHub and GitLab draw it in Markdown. A label's
    lines are split by real line breaks inside its quotes: beside a ``<br/>``, Mermaid would turn a
    backslash and an n of the input into one more line break."""
    lines = ["flowchart TD"]
    clustered = {node for cluster in picture.clusters for node in cluster.nodes}
    by_id = {node.id: node for node in picture.nodes}

    def declare(node: Node, indent: str) -> str:
        text = "\n".join(mermaid_text(line) for line in node.lines)
        return f'{indent}{node.id}(["{text}"])' if node.kind != "layer" else f'{indent}{node.id}["{text}"]'

    lines.extend(declare(node, "  ") for node in picture.nodes if node.id not in clustered)
    for cluster in picture.clusters:
        lines.append(f'  subgraph {cluster.id}["{mermaid_text(cluster.title)}"]')
        lines.extend(declare(by_id[node], "    ") for node in cluster.nodes)
        lines.append("  end")
    lines.extend(f"  {a} --> {b}" for a, b in picture.edges)
    return "\n".join(lines)


def dot(picture: Picture) -> str:
    """A Graphviz digraph, each fold a ``cluster_`` subgraph: ``dot -Tsvg`` draws it."""
    lines = ["digraph network {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f6fa", color="#5b6b8c", '
             'fontname="Helvetica", fontsize=10];',
             '  edge [color="#5b6b8c", arrowsize=0.7];']
    clustered = {node for cluster in picture.clusters for node in cluster.nodes}
    by_id = {node.id: node for node in picture.nodes}

    def declare(node: Node, indent: str) -> str:
        label = "\\n".join(dot_text(line) for line in node.lines)
        extra = "" if node.kind == "layer" else ', shape=oval, fillcolor="#e3ecd9"'
        return f'{indent}{node.id} [label="{label}"{extra}];'

    lines.extend(declare(node, "  ") for node in picture.nodes if node.id not in clustered)
    for cluster in picture.clusters:
        lines.append(f"  subgraph cluster_{cluster.id} {{")
        lines.append(f'    label="{dot_text(cluster.title)}"; style="rounded,dashed"; color="#8a94a8";')
        lines.extend(declare(by_id[node], "    ") for node in cluster.nodes)
        lines.append("  }")
    lines.extend(f"  {a} -> {b};" for a, b in picture.edges)
    lines.append("}")
    return "\n".join(lines)
