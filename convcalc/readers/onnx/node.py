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


class Node(Attributes):
    """One ONNX node with its inputs resolved: activations (``Act``), constants (``Const``), or None (absent)."""

    def __init__(self, proto, index: int, inputs: list, batch: int, name: str) -> None:
        super().__init__(proto, index)
        self.op, self.name, self.inputs, self.batch = proto.op_type, name, inputs, batch
        self.params: list[tuple[str, str]] = []  # (role, initializer name)

    def _input(self, index: int, what: str, required: bool):
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None and required:
            raise self.error(f"has no input {index} ({what}), which the operator requires")
        return value

    def act(self, index: int = 0) -> Act:
        value = self.inputs[index] if index < len(self.inputs) else None
        if not isinstance(value, Act):
            raise Unsupported(f"{self.op}: input {index} is not computed from the graph input")
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


def ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)
