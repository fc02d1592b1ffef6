"""One ONNX node, with its inputs resolved to activations and constants, as the operator builders see it."""

from __future__ import annotations

from ..pytorch.values import Act, Unsupported


class Node:
    """One ONNX node with its inputs resolved: activations (``Act``), constant arrays, or None (absent)."""

    def __init__(self, op: str, name: str, inputs: list, attrs: dict, batch: int) -> None:
        self.op, self.name, self.inputs, self.attrs, self.batch = op, name, inputs, attrs, batch
        self.params: list[tuple[str, str]] = []  # (role, initializer name)

    def act(self, index: int = 0) -> Act:
        value = self.inputs[index] if index < len(self.inputs) else None
        if not isinstance(value, Act):
            raise Unsupported(f"{self.op}: input {index} is not computed from the graph input")
        return value

    def const(self, index: int, default=None):
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None:
            return default
        if isinstance(value, Act):
            raise Unsupported(f"{self.op}: input {index} depends on the graph input")
        return value.array

    def weight(self, index: int, role: str):
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None:
            return None
        if isinstance(value, Act):
            raise Unsupported(f"{self.op}: a weight computed from the input")
        if value.initializer:
            self.params.append((role, value.initializer))
        return value.array


def ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)
