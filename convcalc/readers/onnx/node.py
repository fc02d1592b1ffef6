"""One ONNX node, with its inputs resolved to activations and constants, as the operator builders see it.

Builders read attributes through the typed accessors of ``Attributes`` and
constant inputs through ``const_ints``, ``const_floats`` and ``const_scalar``,
weights through ``weight``: each checks what the file wrote and names the node
and the input when it is wrong.
"""

from __future__ import annotations

from ..pytorch.values import Act, Unsupported
from . import tensors
from .attributes import Attributes
from .batch import PLAIN, OneSlice, alone, placement

# Axes a tensor may have: NumPy's limit (PyTorch's kernels stop earlier).
MAX_RANK = 64


class Node(Attributes):
    """One ONNX node with its inputs resolved: activations (``Act``), constants (``Const``), or None (absent)."""

    def __init__(self, proto, index: int, inputs: list, batch: int, name: str, opset: int = 17,
                 reader=None) -> None:
        super().__init__(proto, index)
        self.op, self.name, self.inputs, self.batch, self.opset = proto.op_type, name, inputs, batch, opset
        self.reader = reader
        self.params: list[tuple[str, str]] = []  # (role, initializer name)
        self.placed = None  # where the output's batch is, when the builder moved it (batch.placement's triple)
        self.slices = 1  # a batch-first operator on a batch merged on axis 0: the slices its layers run on
        self.unbatched = False  # ... on a batch of 1 merged with nothing on axis 0: its layers read the sample

    def _input(self, index: int, what: str, required: bool):
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None and required:
            raise self.error(f"has no input {index} ({what}), which the operator requires")
        return value

    def act(self, index: int = 0, *, moved: bool = False) -> Act:
        """Input ``index``, an activation; ``moved``: the builder reads one whose batch is not first (it
        maps its axes with ``batch.dim`` and sets ``placed``). Otherwise an input whose batch is merged with
        other sizes on axis 0 is given as one slice (``OneSlice``; the layers then run on ``slices``), and any
        other placement is refused."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if not isinstance(value, Act):
            raise Unsupported(f"{self.op}: input {index} is not computed from the graph input")
        where = placement(value)
        if not moved and where != PLAIN:
            sliced = _slices(self, value, where)
            if sliced is not None:
                return sliced
            axis = where[0]
            where = f"is on axis {axis}" if axis >= 0 else "of 1 is merged with its other sizes"
            raise self.error(f"reads a tensor whose batch {where}; convcalc reads {self.op} only with the batch "
                             "first", hint="export the model with the batch first before this operation")
        return value

    def const(self, index: int, default=None, *, what: str = "a constant", required: bool = False):
        """The array of a constant input, as stored."""
        value = self._input(index, what, required)
        if value is None:
            return default
        if isinstance(value, Act):
            raise Unsupported(f"{self.op}: input {index} depends on the graph input")
        return value.array

    def const_ints(self, index: int, what: str, default=None, *, required: bool = False):
        """A constant input's values as Python ints (a shape, axes, pads)."""
        array = self.const(index, None, what=what, required=required)
        return default if array is None else tensors.integers(array, f"{self.label}: input {index} ({what})")

    def const_floats(self, index: int, what: str, default=None, *, required: bool = False):
        """A constant input's values as finite Python floats (scales)."""
        array = self.const(index, None, what=what, required=required)
        return default if array is None else tensors.floats(array, f"{self.label}: input {index} ({what})")

    def const_scalar(self, index: int, what: str, default=None):
        """The one finite number a constant input holds (a bound, a pad value)."""
        array = self.const(index, None, what=what)
        return default if array is None else tensors.scalar(array, f"{self.label}: input {index} ({what})")

    def weight(self, index: int, role: str, *, required: bool = False, rank: int | None = None):
        """A parameter tensor: a floating-point constant, counted as the initializer it is.
        ``rank``: the least number of axes it must have."""
        value = self._input(index, role, required)
        if value is None:
            return None
        if isinstance(value, Act):
            raise Unsupported(f"{self.op}: a weight computed from the input")
        array = value.array
        if array.dtype.kind != "f":
            raise self.error(f"input {index} ({role}) holds {array.dtype.name} values, which are not weights")
        if rank is not None and array.ndim < rank:
            raise self.error(f"input {index} ({role}) has {array.ndim} axes; {self.op} needs at least {rank}")
        if value.initializer:
            self.params.append((role, value.initializer))
        return array


def _slices(node: Node, value: Act, where):
    """The one slice a batch-first operator reads of ``value``, whose batch is merged with other sizes on
    axis 0 (MViT's pooling Conv on batch x heads): its layers run on each slice of a sample. At a batch
    of 1 merged with no axis in particular (``FREE``), PyTorch runs the operator on each of axis 0's
    entries as it would on samples: as many slices, or the one sample where axis 0 is 1. None where
    the batch is elsewhere."""
    if where[0] == 0 and not alone(where):
        count, placed = where[1] * where[2], where
    elif where[0] < 0 and node.batch == 1 and value.shape:
        count, placed = value.shape[0], (where if value.shape[0] > 1 else PLAIN)
    else:
        return None
    if (node.slices, node.unbatched) != (1, False) and (node.slices, node.unbatched) != (count, count == 1):
        raise node.error("reads tensors whose batches are merged with different sizes")
    node.slices, node.unbatched, node.placed = count, count == 1, placed
    return OneSlice(value.ref, value.shape[1:], whole=value)


def axes(node: Node, index: int, *, required: bool = False):
    """A node's axes, from its attribute (older opsets) or its input ``index``; at most MAX_RANK of them."""
    found = node.ints("axes")
    if found is None:
        found = node.const_ints(index, "axes")
    if found is None and required:
        raise node.error(f"has neither an 'axes' attribute nor input {index} (axes)")
    if found is not None and len(found) > MAX_RANK:
        raise node.error(f"names {len(found):,} axes; tensors have at most {MAX_RANK}")
    return found


def ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def gathered(node: Node, value) -> int | None:
    """The size of the float initializers a constant operand's values were picked, added or joined from,
    where they have no more values than the operand (each then counted once), else None (a fixed operand)."""
    tables = getattr(value, "table", ())
    if not tables or value.array.dtype.kind != "f" or node.reader is None:
        return None
    size = sum(int(node.reader.values[t].array.size) for t in tables)
    return size if 1 <= size <= value.array.size else None
