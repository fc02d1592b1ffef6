"""In-place writes, as a later read of the tensor written (or of the tensor it is a view of) sees them.

``torch.export`` keeps PyTorch's in-place operators: ``attn[:, :, 1:, 1:] += bias`` (MViT's relative
positions) is a chain of ``slice`` views of ``attn``, an ``add_`` into the last of them, and a
``copy_`` of the result into the same region; the softmax after it reads ``attn``. Each write gives
the tensor written its new value, and the tensor it is a view of a ``SliceScatter`` of it per slice
of the chain (writing the same region back again is nothing new). A write convcalc cannot follow
(into a ``select``, a permuted view, a fixed tensor) makes the tensor written an operation that is
not counted, so the totals say so instead of reading the old values.
"""

from __future__ import annotations

from ...engine import layers as L
from .values import Act


class Writes:
    """Follows the views of the capture (``view``) and carries each in-place write to them (``write``).

    ``add(spec, node, reads, expect, layout, name)`` adds a layer; ``opaque(node, reads, name)`` adds an
    operation that is not counted, with the shape of ``node``'s result.
    """

    def __init__(self, values: dict, layers: list, add, opaque) -> None:
        self.values, self.layers, self.add, self.opaque = values, layers, add, opaque
        self.views: dict[str, tuple] = {}  # node -> (the node it is a view of, ((parent, Slice or None), ...))
        self.aliases: dict[str, str] = {}  # a view convcalc does not follow -> the node it is a view of
        self.nodes: dict = {}
        self.regions: dict[str, tuple] = {}  # the result of a write -> the region it wrote

    def after(self, node, op: str) -> None:
        """Note a view, or carry a write; called once ``node``'s value is known."""
        self.nodes[node.name] = node
        if _writes(node) or op == "copy":
            self._write(node, op)
        elif _aliases(node) and node.args and hasattr(node.args[0], "name"):
            parent = node.args[0].name
            if op == "slice" and parent not in self.aliases and self._view(node, parent):
                return
            # a view convcalc does not follow (select, transpose, a reshape): a write into it reaches
            # the tensor it is a view of, which then is not counted
            self.aliases[node.name] = self.aliases.get(parent) or self.views.get(parent, (parent,))[0]

    def _view(self, node, parent: str) -> bool:
        here, there = self.values.get(node.name), self.values.get(parent)
        if not (isinstance(here, Act) and isinstance(there, Act)):
            return False
        level = None  # the whole tensor: a view that slices nothing
        if here.ref != there.ref:
            level = self.layers[-1] if self.layers and self.layers[-1].name == here.ref else None
            if not isinstance(level, L.Slice):
                return False
        base, chain = self.views.get(parent, (parent, ()))
        self.views[node.name] = (base, (*chain, (parent, level)))
        return True

    def _region(self, name: str) -> tuple:
        base, chain = self.views.get(name, (name, ()))
        return base, tuple(None if level is None else (level.dim, level.start, level.end, level.step)
                           for _, level in chain if level is not None)

    def _write(self, node, op: str) -> None:
        target = node.args[0] if node.args and hasattr(node.args[0], "name") else None
        if target is None or not isinstance(self.values.get(target.name), Act):
            return  # a write into a fixed tensor: what is read from it is not the input's
        if op == "copy":
            source = node.args[1] if len(node.args) > 1 else None
            value = self.values.get(source.name) if hasattr(source, "name") else None
            if hasattr(source, "name") and self.regions.get(source.name) == self._region(target.name):
                self.values[node.name] = value  # the region already holds it (x[...] += y writes twice)
                self.regions[node.name] = self._region(target.name)
                return
            old = self.values[target.name]
            if not (isinstance(value, Act) and value.shape == old.shape and value.layout == old.layout):
                reads = [old] + ([value] if isinstance(value, Act) else [])
                value = self.opaque(node, reads, node)
        else:
            value = self.values.get(node.name)
            if not isinstance(value, Act):
                return
        self.values[node.name] = value
        self.regions[node.name] = self._region(target.name)
        self._carry(node, target.name, value)
        root = self.aliases.get(target.name)
        if root is not None and isinstance(self.values.get(root), Act) and root in self.nodes:
            self.values[root] = self.opaque(node, [self.values[root], value], self.nodes[root])

    def _carry(self, node, name: str, value: Act) -> None:
        """``name`` now holds ``value``: so do the tensors it is a view of, each with the slice written."""
        self.values[name] = value
        _, chain = self.views.get(name, (name, ()))
        written = value
        for k, (parent, level) in enumerate(reversed(chain)):
            old = self.values.get(parent)
            label = f"{node.name}.write" + (f"_{k}" if k else "")
            if not isinstance(old, Act):
                return
            if level is not None:
                spec = L.SliceScatter(level.dim, level.start, level.end, level.step, inplace=True)
                written = self.add(spec, node, [old, written], old.shape, old.layout, label)
            self.values[parent] = written


def _returns(node):
    schema = getattr(node.target, "_schema", None)
    return schema.returns[0].alias_info if schema is not None and schema.returns else None


def _writes(node) -> bool:
    """Whether the operator writes into its first argument (``add_``, ``copy_``)."""
    alias = _returns(node)
    return alias is not None and alias.is_write


def _aliases(node) -> bool:
    """Whether the operator's result is a view of its first argument (``slice``, ``select``, ``view``)."""
    alias = _returns(node)
    return alias is not None and not alias.is_write
