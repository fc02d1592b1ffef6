"""What reads each value of an ONNX graph, and so which constants need not be made whole.

The TorchScript exporter writes an index assignment (``attn[:, :, 1:, 1:] = ...``) as ScatterND with
the grid of every position written: ranges broadcast against each other (arithmetic whose values
only Shape reads), expanded to the grid's shape and joined. At a large batch that grid has billions
of entries. A constant only Shape reads (directly or through arithmetic) is made as an array of its
shape holding no values, and an Expand or Unsqueeze whose result only builds ScatterND's indices as a
read-only view (``fold.evaluate``'s ``lazy``); ``scatter.grid`` holds their join unevaluated.
"""

from __future__ import annotations

ARITHMETIC = {"Add", "Sub", "Mul", "Div"}
_DEPTH = 8  # how far the readers are followed


class Readers:
    """Each value's readers in the main graph: (op type, input index, outputs); a graph output as
    ("", 0, ()). Values a subgraph defines have none here, so they are always made."""

    def __init__(self, graph) -> None:
        self.graph = graph
        self._readers: dict | None = None

    def of(self, name: str) -> list:
        if self._readers is None:
            self._readers = {}
            for n in self.graph.node:
                for k, i in enumerate(n.input):
                    self._readers.setdefault(i, []).append((n.op_type, k, tuple(n.output)))
            for o in self.graph.output:
                self._readers.setdefault(o.name, []).append(("", 0, ()))
        return self._readers.get(name, [])

    def lazy(self, node, inputs) -> bool:
        """Whether a constant node's result may be left unmade: arithmetic only Shape reads, and Expand and
        Unsqueeze (of a view) whose results only build ScatterND's indices."""
        out = node.output[0]
        if node.op_type in ARITHMETIC:
            return self._shape_only(out, _DEPTH)
        if node.op_type == "Expand" or (node.op_type == "Unsqueeze" and inputs and 0 in inputs[0].array.strides):
            return self._indices_only(out, _DEPTH)
        return False

    def _shape_only(self, name: str, depth: int) -> bool:
        readers = self.of(name)
        return bool(readers) and depth > 0 and all(
            op == "Shape" or op in ARITHMETIC and all(self._shape_only(o, depth - 1) for o in outputs if o)
            for op, _, outputs in readers)

    def _indices_only(self, name: str, depth: int) -> bool:
        readers = self.of(name)
        return bool(readers) and depth > 0 and all(
            (op, k) == ("ScatterND", 1) or
            ((op, k) == ("Unsqueeze", 0) or op == "Concat") and all(self._indices_only(o, depth - 1)
                                                                     for o in outputs if o)
            for op, k, outputs in readers)
