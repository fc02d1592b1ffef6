"""A node's attributes, read only through typed accessors that check what the file wrote.

Each accessor (``int``, ``ints``, ``float``, ``floats``, ``string``, ``tensor``)
checks the attribute's declared type, that integers are within PyTorch's 64 bits
(and at least ``minimum``), that floats are finite, that strings are UTF-8 (and
one of ``choices``), and that tensors hold what they declare; any failure is one
``SpecError`` naming the node and the attribute.
"""

from __future__ import annotations

import math

from ...engine.errors import SpecError
from ...engine.layers.rules import clip
from ...engine.limits import MAX_INTEGER
from . import tensors

HINT = "the file is damaged or was not written by an ONNX exporter; re-export the model"

# AttributeProto's type numbers, and how a message names each.
_TYPES = {0: "untyped", 1: "a float", 2: "an integer", 3: "a string", 4: "a tensor", 5: "a graph",
          6: "a list of floats", 7: "a list of integers", 8: "a list of strings", 9: "a list of tensors",
          10: "a list of graphs", 11: "a sparse tensor", 12: "a list of sparse tensors", 13: "a type",
          14: "a list of types"}
FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS = 1, 2, 3, 4, 5, 6, 7, 8


def label(node, index: int | None = None) -> str:
    """How messages name a node: its name and operator, or its place and operator when it has no name."""
    op = clip(node.op_type or "?", 40)
    if node.name:
        return f"node {clip(node.name, 60)!r} ({op})"
    return f"node {index} ({op})" if index is not None else f"a {op} node"


class Attributes:
    """The attributes of one NodeProto, by name, decoded on demand."""

    def __init__(self, node, index: int | None = None) -> None:
        self.label = label(node, index)
        self._raw: dict = {}
        for attribute in node.attribute:
            if attribute.name in self._raw:
                raise self.error(f"has the attribute {clip(attribute.name, 40)!r} twice")
            self._raw[attribute.name] = attribute

    def __contains__(self, name: str) -> bool:
        return name in self._raw

    def error(self, message: str, hint: str = HINT) -> SpecError:
        return SpecError(f"{self.label}: {message}", hint=hint, field="file")

    def _get(self, name: str, kind: int, required: bool):
        attribute = self._raw.get(name)
        if attribute is None:
            if required:
                raise self.error(f"has no {name!r} attribute, which the operator requires")
            return None
        if attribute.type != kind:
            raise self.error(f"attribute {name!r} is {_TYPES.get(attribute.type, 'of an unknown type')}, "
                             f"not {_TYPES[kind]}")
        return attribute

    def _integer(self, name: str, value: int, minimum: int | None) -> int:
        if abs(value) > MAX_INTEGER:
            raise self.error(f"attribute {name!r} holds {value}, out of range: PyTorch's sizes are 64-bit integers")
        if minimum is not None and value < minimum:
            raise self.error(f"attribute {name!r} holds {value}, less than {minimum}")
        return int(value)

    def int(self, name: str, default=None, *, required: bool = False, minimum: int | None = None):
        attribute = self._get(name, INT, required)
        return default if attribute is None else self._integer(name, attribute.i, minimum)

    def ints(self, name: str, default=None, *, required: bool = False, minimum: int | None = None,
             length: int | None = None):
        """A list of integers; ``length``: the count it must have (a value per spatial axis, say)."""
        attribute = self._get(name, INTS, required)
        if attribute is None:
            return default
        values = tuple(self._integer(name, v, minimum) for v in attribute.ints)
        if length is not None and len(values) != length:
            raise self.error(f"attribute {name!r} has {len(values):,} values where the node needs {length}")
        return values

    def _finite(self, name: str, value: float) -> float:
        if not math.isfinite(value):
            raise self.error(f"attribute {name!r} holds {value}, which is not a finite number")
        return float(value)

    def float(self, name: str, default=None, *, required: bool = False):
        attribute = self._get(name, FLOAT, required)
        return default if attribute is None else self._finite(name, attribute.f)

    def floats(self, name: str, default=None, *, required: bool = False):
        attribute = self._get(name, FLOATS, required)
        return default if attribute is None else tuple(self._finite(name, v) for v in attribute.floats)

    def string(self, name: str, default=None, *, required: bool = False, choices=None):
        """A string attribute, UTF-8 decoded; ``choices``: the values ONNX defines for it."""
        attribute = self._get(name, STRING, required)
        if attribute is None:
            return default
        try:
            value = attribute.s.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"attribute {name!r} is not UTF-8 text") from None
        if choices is not None and value not in choices:
            raise self.error(f"attribute {name!r} is {clip(value, 40)!r}, which is not one of "
                             f"{', '.join(choices)}")
        return value

    def strings(self, name: str, default=None, *, required: bool = False):
        """A list of strings, each UTF-8 decoded (at most 64 of them)."""
        attribute = self._get(name, STRINGS, required)
        if attribute is None:
            return default
        if len(attribute.strings) > 64:
            raise self.error(f"attribute {name!r} has {len(attribute.strings):,} strings")
        try:
            return tuple(value.decode("utf-8") for value in attribute.strings)
        except UnicodeDecodeError:
            raise self.error(f"attribute {name!r} is not UTF-8 text") from None

    def tensor(self, name: str, default=None, *, required: bool = False):
        attribute = self._get(name, TENSOR, required)
        if attribute is None:
            return default
        import onnx

        return tensors.decode(onnx, attribute.t, f"{self.label}, attribute {name!r}")

    def graph(self, name: str, *, required: bool = False):
        """A subgraph attribute (Loop's body, If's branches), as the GraphProto it is."""
        attribute = self._get(name, GRAPH, required)
        return None if attribute is None else attribute.g

    def names(self) -> tuple[str, ...]:
        return tuple(self._raw)
