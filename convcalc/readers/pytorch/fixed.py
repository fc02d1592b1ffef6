"""Layers computed without the input: a learned product of fixed values (Swin V2's position-bias MLP
on its table of relative coordinates) and what follows it, up to where it joins the input's path.

PyTorch runs them once per forward pass, whatever the batch: they are read as layers whose tensor
is the whole traced one (the trace holds no batch: ``Layout.absent``), marked ``once`` so their
figures are counted once, not per sample.
"""

from __future__ import annotations

from ...engine import layers as L
from ...engine.graph import INPUT
from ...engine.sizes import volume
from .aten import ARITHMETIC
from .values import Act, Const, Layout, Param, Unsupported, absent

# Products with a learned weight that, reading fixed values, start such layers:
# operator -> (the data argument, the weight argument).
FIXED_PRODUCTS = {"linear": ("input", "weight"), "matmul": ("self", "other"), "mm": ("self", "mat2"),
                  **dict.fromkeys(("conv1d", "conv2d", "conv3d", "convolution"), ("input", "weight"))}
# Operators whose operands computed without the input broadcast against the activations
FITTED = ARITHMETIC | {"scaled_dot_product_attention"}
# Operators that read fixed tensors repeated over the batch beside activations as layers (their copies).
COPIED = {"cat", "concat", "grid_sampler", "grid_sampler_2d", "grid_sampler_3d"}
# Products, by their operands' arguments: of learned tensors alone, not counted (``learned_product``).
_OPERANDS = {**FIXED_PRODUCTS, "bmm": ("self", "mat2"), "einsum": ("tensors",), "addmm": ("mat1", "mat2"),
             "baddbmm": ("batch1", "batch2")}
# Of the fixed products, the ones that count dims batch first: their fixed input's axis 0 is its batch of one.
_BATCH_FIRST = {"conv1d", "conv2d", "conv3d", "convolution"}


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
            shape, layout = value.shape, absent(len(value.shape))
            if isinstance(value, Const) and value.repeated:  # a copy per sample: what reads it runs per sample
                shape, layout = shape[1:], Layout(0, len(shape))
            elif op in _BATCH_FIRST:
                if not shape or shape[0] != 1:
                    return None
                shape, layout = shape[1:], Layout(0, len(shape), unit=True)
            held = isinstance(value, Param) and value.buffer  # a buffer read as it is: the model's storage
            self.made[key] = self.add(L.Constant(shape, buffer=held), node, [INPUT], (), shape, layout, name=key)
        return {**args, argument: self.made[key]}

    def learned_product(self, node, op: str, args: dict, shape: tuple[int, ...]) -> Act | None:
        """A product of learned tensors alone (``w1 @ w2``, an einsum of two tables), which PyTorch computes
        every pass: convcalc cannot cost it as a layer of one learned operand, so it is an operation not
        counted, once a pass, holding the parameters it reads (None: not such a product)."""
        operands = [args.get(name) for name in _OPERANDS.get(op, ())]
        operands = [t for value in operands for t in (value if isinstance(value, (list, tuple)) else (value,))]
        learned = [t for t in operands if isinstance(t, Param) and not t.buffer]
        if len(learned) < 2:
            return None
        made: dict[str, int] = {}
        for p in learned:
            for name, count in p.parts or ((p.name, p.table or volume(p.shape)),):
                made.setdefault(name, count)
        weights = tuple((f"operand{k}", name) for k, name in enumerate(made))
        return self.add(L.Opaque(f"aten.{op}", shape, sum(made.values())), node, [INPUT], weights, shape,
                        absent(len(shape)))

    def einsum_operands(self, node, args: dict) -> dict:
        """An einsum's fixed operands (buffers, values made in forward) as Constant layers where it also
        reads a learned tensor with no activation, or only tensors computed without the input: MaxViT's
        relative-position bias, its learned table contracted with fixed one-hot lookups, once a pass."""
        tensors = list(args.get("tensors") or ())
        acts = [t for t in tensors if isinstance(t, Act)]
        learned = [t for t in tensors if isinstance(t, Param) and not t.buffer]
        fixed = [t for t in tensors if (isinstance(t, Param) and t.buffer and t.table is None) or
                 (isinstance(t, Const) and not t.repeated and t.layout is None)]
        if not fixed or not (learned and not acts or acts and all(a.layout.absent for a in acts)):
            return args
        owner = self.names.module_of(node) or "model"
        made = []
        for tensor in tensors:
            if any(tensor is f for f in fixed):
                key = tensor.name if isinstance(tensor, Param) else f"{owner}.fixed_{len(self.made)}"
                if key not in self.made:
                    shape, held = tuple(tensor.shape), isinstance(tensor, Param)  # a buffer: the model's storage
                    self.made[key] = self.add(L.Constant(shape, buffer=held), node, [INPUT], (), shape,
                                              absent(len(shape)), name=key)
                tensor = self.made[key]
            made.append(tensor)
        return {**args, "tensors": made}

    def copies(self, node, op: str, args: dict) -> dict:
        """``args`` with each fixed tensor repeated over the batch, read beside an activation, replaced by
        its Constant layer: a copy per sample (RAFT's first flow, the difference of two coordinate grids;
        its first lookup grid), or, for a sampling grid, one made once that every sample views (an expand:
        grid_sample saves the view, whose storage is one sample's)."""
        if not any(isinstance(a, Act) for value in args.values()
                   for a in (value if isinstance(value, (list, tuple)) else (value,))):
            return args
        owner = self.names.module_of(node) or "model"

        def copy(value, viewed: bool):
            if not isinstance(value, Const) or not (value.repeated or value.layout):
                return value
            key = f"{owner}.fixed_{len(self.made)}"
            # an expand over the batch that grid_sample reads as its grid is one sample's storage every
            # sample views: made once (what a join or a sampled input reads, PyTorch copies or reads per sample)
            shape, layout = ((value.shape[1:], Layout(0, len(value.shape), unit=value.shared and viewed))
                             if value.repeated else (value.per_sample, value.layout))
            self.made[key] = self.add(L.Constant(shape), node, [INPUT], (), shape, layout, name=key)
            return self.made[key]

        grids = {"grid"} if op.startswith("grid_sampler") else set()
        return {key: type(value)(copy(v, False) for v in value) if isinstance(value, (list, tuple))
                else copy(value, key in grids) for key, value in args.items()}

    def place(self, node, op: str, args: dict, acts: list, traced, per_sample):
        """The per-sample shape and layout of ``node``'s result, and its arguments, fitted where arithmetic
        joins a tensor computed without the input to the input's path. ``traced`` gives the traced shape
        (for a tensor computed without the input), ``per_sample`` both for one made from the input."""
        if all(a.layout.absent for a in acts):  # no batch in the trace: the whole tensor per sample
            shape = traced()
            return shape, absent(len(shape)), args
        if all(a.layout.unit for a in acts) and op != "repeat":
            shape = traced()
            if not shape or shape[0] != 1:
                raise Unsupported(f"{op} along the axis of a fixed tensor that stands for the batch")
            return shape[1:], Layout(0, len(shape), unit=True), args
        expect, layout = per_sample()
        if op in FITTED and any(a.layout.absent for a in acts):
            args = self.fitted(node, args, next(a for a in acts if not a.layout.absent))
        return expect, layout, args

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
