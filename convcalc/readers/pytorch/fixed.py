"""Layers computed without the input: a learned product of fixed values (Swin V2's position-bias MLP
on its table of relative coordinates) and what follows it, up to where it joins the input's path.

PyTorch runs them once per forward pass, whatever the batch. convcalc's figures are per sample
times the batch, so they are read as layers whose per-sample shape is the whole traced tensor (the
trace holds no batch: ``Layout.absent``); at batch 1 they count exactly what PyTorch runs, at batch N
N times, which each such layer's note says.
"""

from __future__ import annotations

from ...engine import layers as L
from ...engine.graph import INPUT
from .values import Act, Const, Param, absent

# Products with a learned weight that, reading fixed values, start such layers:
# operator -> (the data argument, the weight argument).
FIXED_PRODUCTS = {"linear": ("input", "weight"), "matmul": ("self", "other"), "mm": ("self", "mat2")}
# The note on each such layer that costs something.
ONCE_PER_PASS = ("computed from parameters and fixed values, not the input: PyTorch runs it once per forward "
                 "pass, convcalc counts it per sample, so at batch N it is counted N times (N-1 times its MACs "
                 "and FLOPs too many)")
# Layers that only move values: no cost to count again, no note.
_MOVES = (L.Reshape, L.Permute, L.Transpose, L.Squeeze, L.Unsqueeze, L.Flatten, L.IndexSelect, L.Constant)


def fixed_product(op: str, args: dict) -> str | None:
    """The argument holding fixed values (a buffer, or values made in forward) that a product with a
    learned weight reads, or None: that product makes a tensor that is not the input's."""
    data, weight = FIXED_PRODUCTS.get(op, (None, None))
    if data is None:
        return None
    value, learned = args.get(data), args.get(weight)
    fixed = isinstance(value, Const) or (isinstance(value, Param) and value.buffer and value.table is None)
    if fixed and isinstance(learned, Param) and not learned.buffer and learned.table is None:
        return data
    return None


def remark(spec, layout) -> tuple[str, ...]:
    """The note a layer computed without the input carries, if it costs anything."""
    return (ONCE_PER_PASS,) if layout.absent and not isinstance(spec, _MOVES) else ()


class FixedLayers:
    """The Constant layers for the fixed tensors products read, and the Reshapes that fit such layers'
    results to a batch-first activation; each made once. ``add`` adds a layer (the reader's)."""

    def __init__(self, add, names) -> None:
        self.add, self.names = add, names
        self.made: dict[str, Act] = {}

    def start(self, node, op: str, args: dict) -> dict | None:
        """``args`` with the fixed data a learned product reads replaced by its Constant layer, or None."""
        argument = fixed_product(op, args)
        if argument is None:
            return None
        value = args[argument]
        owner = self.names.module_of(node) or "model"  # a tensor made in forward: named after its module
        key = value.name if isinstance(value, Param) else f"{owner}.fixed_{len(self.made)}"
        if key not in self.made:
            self.made[key] = self.add(L.Constant(value.shape), node, [INPUT], (), value.shape,
                                      absent(len(value.shape)), name=key)
        return {**args, argument: self.made[key]}

    def fitted(self, node, args: dict, main: Act) -> dict:
        """Arithmetic's operands computed without the input, their size-1 axes facing the batch of a
        batch-first activation dropped by a Reshape, so they broadcast per sample as they do traced."""
        if not main.layout.leading:
            return args
        args = dict(args)
        for key, value in args.items():
            extra = len(value.shape) - len(main.shape) if isinstance(value, Act) and value.layout.absent else 0
            if extra > 0 and all(n == 1 for n in value.shape[:extra]):
                shape = value.shape[extra:]
                name = f"{value.ref}.per_sample" + (f"_{len(shape)}" if extra > 1 else "")
                if name not in self.made:
                    self.made[name] = self.add(L.Reshape(shape), node, [value.ref], (), shape, absent(len(shape)),
                                               name=name)
                args[key] = self.made[name]
        return args
