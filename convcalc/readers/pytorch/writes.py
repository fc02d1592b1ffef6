"""In-place writes, as a later read of the tensor written (or of the tensor it is a view of) sees them.

``torch.export`` keeps PyTorch's in-place operators: ``attn[:, :, 1:, 1:] += bias`` (MViT's relative
positions) is a chain of ``slice`` views of ``attn``, an ``add_`` into the last of them, and a
``copy_`` of the result into the same region; the softmax after it reads ``attn``. Each write gives
the tensor written its new value, and the tensor it is a view of a ``SliceScatter`` of it per slice
of the chain (writing the same region back again is nothing new); a view of it taken before the
write and read after it is taken again from the new value, as PyTorch's views share the storage
written (unless it lies apart from the region written). A write convcalc cannot follow
(into a ``select``, a permuted view, a fixed tensor) makes the tensor written an operation that is
not counted, and so does a view convcalc does not follow read after a write: the totals say so
instead of reading the old values.
"""

from __future__ import annotations

from ...engine import layers as L
from .values import Act


class Writes:
    """Follows the views of the capture (``view``) and carries each in-place write to them (``write``).

    ``add(spec, node, reads, expect, layout, suffix)`` adds a layer named after ``node`` and ``suffix``;
    ``opaque(node, reads, shaped)`` adds an operation that is not counted, with the shape of ``shaped``'s
    result.
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
        return base, tuple((level.dim, level.start, level.end, level.step) for _, level in chain if level is not None)

    def _write(self, node, op: str) -> None:
        target = node.args[0] if node.args and hasattr(node.args[0], "name") else None
        if target is None:
            return
        if not isinstance(self.values.get(target.name), Act):
            self._into_fixed(node, op, target.name)
            return
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
        self._refresh(node, target.name, root)

    def _into_fixed(self, node, op: str, target: str) -> None:
        """A write into a tensor made without the input (``out = torch.zeros(...)``, then ``out[:, :3] =
        f(x)``): where the values written are the input's, the tensor becomes an operation that is not
        counted, reading them. A parameter or buffer written in place stays what it is."""
        source = node.args[1] if op == "copy" and len(node.args) > 1 else node
        value = self.values.get(source.name) if hasattr(source, "name") else None
        root = self.aliases.get(target) or self.views.get(target, (target,))[0]
        if not isinstance(value, Act) or root not in self.nodes:
            return  # fixed values written into a fixed tensor: still fixed
        fits = op != "copy" or _traced_shape(source) == _traced_shape(self.nodes.get(target))
        if fits:  # what was written is the value of the tensor written, and of the write's result
            self.values[target] = self.values[node.name] = value
        if not (target == root and fits):  # not the whole tensor written (as out.copy_(f(x)) writes it)
            self.values[root] = self.opaque(node, [value], self.nodes[root])
            if target == root:
                self.values[node.name] = self.values[root]
        self._refresh(node, target, root)

    def _refresh(self, node, target: str, root: str | None) -> None:
        """The views of the tensor written, taken before the write and read after it, see the write: a
        followed view is taken again from the tensor's new value (unless it lies apart from the region
        written), a view convcalc does not follow becomes an operation that is not counted."""
        base, chain = self.views.get(target, (target, ()))
        base = root or base
        current = {target, base, *(parent for parent, _ in chain)}
        written = None if root is not None else _indices(self.values.get(base), chain)
        fresh: dict[str, Act] = {base: self.values.get(base)}
        if not isinstance(fresh[base], Act):
            return
        for name, (origin, path) in list(self.views.items()):
            if origin != base or name in current or not self._read_later(name):
                continue
            if written is not None and _apart(written, _indices(fresh[base], path)):
                continue
            self.values[name] = self._again(node, name, fresh)
        for name, origin in list(self.aliases.items()):
            if origin == base and name not in current and self._read_later(name):
                old = self.values.get(name)
                if isinstance(old, Act):
                    spec = L.Opaque(f"aten.{_op(self.nodes[name])}", tuple(old.shape))
                    self.values[name] = self.add(spec, node, [fresh[base]], old.shape, old.layout,
                                                 ".read")

    def _read_later(self, name: str) -> bool:
        seen = self.nodes.get(name)
        return seen is not None and any(user.name not in self.nodes for user in seen.users)

    def _again(self, node, name: str, fresh: dict) -> Act:
        """The view ``name`` taken again from its tensor's new value (``fresh``: the values so far)."""
        if name in fresh:
            return fresh[name]
        parent, level = self.views[name][1][-1]
        above, old = self._again(node, parent, fresh), self.values[name]
        if level is None:
            value = Act(above.ref, old.shape, old.layout)
        else:
            spec = L.Slice(level.dim, level.start, level.end, level.step)
            value = self.add(spec, node, [above], old.shape, old.layout, ".read")
        fresh[name] = self.values[name] = value
        return value

    def _carry(self, node, name: str, value: Act) -> None:
        """``name`` now holds ``value``: so do the tensors it is a view of, each with the slice written."""
        self.values[name] = value
        _, chain = self.views.get(name, (name, ()))
        written = value
        for k, (parent, level) in enumerate(reversed(chain)):
            old = self.values.get(parent)
            label = ".write" + (f"_{k}" if k else "")
            if not isinstance(old, Act):
                return
            if level is not None:
                spec = L.SliceScatter(level.dim, level.start, level.end, level.step, inplace=True)
                written = self.add(spec, node, [old, written], old.shape, old.layout, label)
            self.values[parent] = written


def _indices(value, chain) -> list | None:
    """The positions of the tensor ``value`` a chain of slices reads, per axis (None: unknown)."""
    if not isinstance(value, Act):
        return None
    axes = [range(n) for n in value.shape]
    for _, level in chain:
        if level is not None:
            axis, start, length, step = level.locate(tuple(len(a) for a in axes))
            axes[axis] = axes[axis][start:start + length * step:step]
    return axes


def _apart(one: list | None, other: list | None) -> bool:
    """Whether two regions of a tensor share no position (some axis where their indices differ)."""
    if one is None or other is None or len(one) != len(other):
        return False
    return any(not set(a) & set(b) for a, b in zip(one, other))


def _traced_shape(node) -> tuple | None:
    shape = getattr(node.meta.get("val"), "shape", None) if node is not None else None
    return None if shape is None else tuple(shape)


def _op(node) -> str:
    return getattr(getattr(node.target, "overloadpacket", None), "__name__", "view")


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
