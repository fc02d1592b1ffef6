"""Layers that join branches: elementwise arithmetic with broadcasting (residual sums, gates) and concat."""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import ClassVar

from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import IDENTITY, Global
from ..sizes import volume
from .base import Figures, Layer, Shape, Use, format_shape, saves_input, saves_once
from .kind import spell

ARITHMETIC_FIELDS = ("scalar", "weight_shape", "constant_shape", "table", "made", "unfollowed")


@dataclass(frozen=True)
class Merge(Layer):
    """A layer reading two or more branches (named with ``from``)."""

    def infer(self, shape: Shape) -> Figures:
        return self.merge((shape,))

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Arithmetic(Merge):
    """Elementwise arithmetic with PyTorch's broadcasting: of two or more branches, or of one
    branch and a ``scalar``, a learned tensor (``weight_shape``, counted as parameters) or a
    fixed one (``constant_shape``, a buffer). Operand shapes are written without the batch.
    A learned operand gathered from a smaller table (Swin's relative-position bias: 169 x 3
    values indexed into 3 x 49 x 49), or made from several parameters (a sum of two), gives their count
    as ``table``: those are its parameters. ``made``: the learned operand is the result of an exponential
    (sigmoid, tanh) of its parameters, computed every pass (Swin V2's clamped and exponentiated logit
    scale): a tensor of its own, saved once, by that function or by a product for its other factor's
    gradient. ``unfollowed``: what making that operand saved for the backward pass is not followed (the
    training memory says it is not exact).

    One FLOP per output element for each operand after the first.
    """

    scalar: float | None = None
    weight_shape: tuple[int, ...] | None = None
    constant_shape: tuple[int, ...] | None = None
    table: int | None = None
    made: bool = False
    unfollowed: bool = False
    operation: ClassVar[str] = ""
    symbol: ClassVar[str] = ""

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        operands = [s for s in (self.weight_shape, self.constant_shape) if s is not None]
        count = len(shapes) + len(operands) + (self.scalar is not None)
        if count < 2:
            kind = self.operation
            raise ShapeError(
                f"{kind} joins two or more branches but receives {len(shapes)} (and no scalar or tensor operand)",
                hint=f'name the branches it reads, e.g. {{"type": "{kind}", "from": ["a", "b"]}}, or give scalar=',
                field="from",
            )
        first = shapes[0]
        output = first
        for index, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(first):
                raise BatchAxisError(
                    f"{self.operation} of {_branch(self, 0)} ({format_shape(first)}) and {_branch(self, index)} "
                    f"({format_shape(shape)}): branches of different ranks would broadcast the batch axis of one "
                    "against a data axis of the other",
                    hint="give the smaller branch size-1 axes (view or unsqueeze) so the ranks agree", field="from")
            try:
                output = self._broadcast(output, shape, _branch(self, index))
            except ShapeError:
                raise ShapeError(
                    f"{self.operation} needs branches of one shape, or shapes that broadcast: {_branch(self, 0)} "
                    f"gives {format_shape(first)} but {_branch(self, index)} gives {format_shape(shape)} "
                    f"({_difference(first, shape)})",
                    hint="make the branches agree, e.g. a 1x1 convolution with the right stride on the shortcut",
                    field="from") from None
        for name, operand in (("weight_shape", self.weight_shape), ("constant_shape", self.constant_shape)):
            if operand is None:
                continue
            operand = tuple(operand)
            if any(n < 1 for n in operand):
                raise SpecError(f"{name}={format_shape(operand)} must be positive sizes", hint=f"e.g. {name}=64x1x1",
                                field=name)
            if len(operand) == len(first) + 1:
                if operand[0] != 1:
                    raise ShapeError(
                        f"{name}={format_shape(operand)} has a leading axis of {operand[0]} where the batch is: "
                        "it would change the batch", hint="a leading 1 is the batch axis; drop it or make it 1",
                        field=name)
                operand = operand[1:]
            if len(operand) > len(first):
                raise ShapeError(
                    f"{name}={format_shape(operand)} has more axes than the input {format_shape(first)}",
                    hint="give the operand at most as many axes as one sample", field=name)
            output = self._broadcast(output, operand, name)
        for flag in ("made", "unfollowed"):
            if getattr(self, flag) and self.weight_shape is None:
                raise SpecError(f"{flag} describes a learned operand: give it with weight_shape",
                                hint=f"e.g. weight_shape=3x1x1,{flag}=true", field=flag)
        if self.table is not None and (self.weight_shape is None or self.table < 1):
            raise SpecError(f"table={self.table} must count the learned values the weight_shape operand is made "
                            "from: at least 1, and only with weight_shape",
                            hint="e.g. weight_shape=1x3x49x49,table=507", field="table")
        params = (self.table or volume(self.weight_shape)) if self.weight_shape is not None else 0
        flops = (count - 1) * volume(output)
        parts = [f"{len(shapes)} branches"] if len(shapes) > 1 else []
        if self.scalar is not None:
            parts.append(f"{self.symbol} {self.scalar:g}")
        if self.weight_shape is not None:
            parts.append(f"{self.symbol} weight {format_shape(self.weight_shape)}"
                         + (f" from a table of {self.table}" if self.table is not None else ""))
        if self.constant_shape is not None:
            parts.append(f"{self.symbol} constant {format_shape(self.constant_shape)}")
        return Figures(self.operation.capitalize(), output, params, 0, flops, None, (), ", ".join(parts),
                       broadcast=True, tensors=(("weight", params),) if params else ())

    def _broadcast(self, a: Shape, b: Shape, name: str) -> Shape:
        """PyTorch's broadcasting of two per-sample shapes (aligned at the right)."""
        width = max(len(a), len(b))
        a1, b1 = (1,) * (width - len(a)) + tuple(a), (1,) * (width - len(b)) + tuple(b)
        out = []
        for axis, (m, n) in enumerate(zip(a1, b1)):
            if m != n and 1 not in (m, n):
                raise ShapeError(
                    f"{self.operation}: the size of {format_shape(a)} ({m}) must match the size of {name} "
                    f"{format_shape(b)} ({n}) at non-singleton axis {axis + 1} (axis {axis} differs by {abs(m - n)})",
                    hint="make the operands agree, or give one of them size 1 on that axis to broadcast it",
                    field="from")
            out.append(max(m, n) if 0 not in (m, n) else 0)
        return tuple(out)

    def saved(self, use: Use) -> list | None:
        return None if self.unfollowed else []  # a sum's gradient needs no operand

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        function = getattr(operator, {"div": "truediv"}.get(self.operation, self.operation))
        extras = [run.between(0.5, 1.5, shape) for shape in (self.weight_shape, self.constant_shape)
                  if shape is not None]
        if self.scalar is not None:
            extras.append(x.dtype.type(self.scalar))

        in_place = getattr(operator, "i" + function.__name__)

        def fits(shape, into):  # whether an operand broadcasts into the result without growing it
            return len(shape) <= len(into) and all(n in (1, m) for n, m in zip(reversed(shape), reversed(into)))

        def call(*xs):
            y, fresh = xs[0], False
            for other in (*xs[1:], *extras):
                # after the first operation, into the array it made: one new array however many operands
                if fresh and fits(getattr(other, "shape", ()), y.shape):
                    y = in_place(y, other)
                else:
                    y, fresh = function(y, other), True
            return y.astype(x.dtype, copy=False)

        return call


@dataclass(frozen=True)
class Add(Arithmetic):
    """Elementwise sum with broadcasting: residual connections, biases, gates.

    >>> Add().merge(((64, 56, 56), (64, 56, 56))).flops
    200704
    """

    spellings = (spell("add", fields=ARITHMETIC_FIELDS, positional=("scalar",)),)

    operation: ClassVar[str] = "add"
    symbol: ClassVar[str] = "+"


@dataclass(frozen=True)
class Sub(Arithmetic):
    """Elementwise difference with broadcasting.

    >>> Sub(scalar=0.5).merge(((3, 4),)).flops
    12
    """

    spellings = (spell("sub", "subtract", fields=ARITHMETIC_FIELDS, positional=("scalar",)),)

    operation: ClassVar[str] = "sub"
    symbol: ClassVar[str] = "-"


@dataclass(frozen=True)
class Mul(Arithmetic):
    """Elementwise product with broadcasting: squeeze-excitation gates, layer scale.

    >>> Mul().merge(((96, 56, 56), (96, 1, 1))).output_shape
    (96, 56, 56)
    """

    spellings = (spell("mul", "multiply", fields=ARITHMETIC_FIELDS, positional=("scalar",)),)

    operation: ClassVar[str] = "mul"
    symbol: ClassVar[str] = "×"

    def saved(self, use: Use) -> list | None:
        # each factor's gradient needs the other factor: saved when the other one needs a gradient
        if self.unfollowed:
            return None
        if self.scalar is not None or self.constant_shape is not None:
            return None if len(use.inputs_grad) > 1 else []
        if self.weight_shape is not None:  # the weight is the parameter's storage, unless it is made in forward
            # (a factor made by an exponential is saved by it while the parameter trains, or by the product)
            made = [saves_once(dict(self.weights).get("weight", self.name), volume(self.weight_shape) * use.itemsize)
                    ] if self.made and (use.inputs_grad[0] or use.trainable) else []
            return ([saves_input()] if use.trainable else []) + made
        first, second = use.inputs_grad[0], use.inputs_grad[1]
        return ([saves_input(1)] if first else []) + ([saves_input(0)] if second else [])


@dataclass(frozen=True)
class Div(Arithmetic):
    """Elementwise quotient with broadcasting.

    >>> Div(scalar=2.0).merge(((8,),)).output_shape
    (8,)
    """

    spellings = (spell("div", "divide", fields=ARITHMETIC_FIELDS, positional=("scalar",)),)

    operation: ClassVar[str] = "div"
    symbol: ClassVar[str] = "÷"

    def saved(self, use: Use) -> list | None:
        # a / b: a's gradient needs b; b's needs a and b
        if self.scalar is not None and len(use.inputs_grad) == 1:
            return []
        if len(use.inputs_grad) != 2 or self.weight_shape is not None or self.constant_shape is not None:
            return None
        return [saves_input(1)] + ([saves_input(0)] if use.inputs_grad[1] else [])


@dataclass(frozen=True)
class Concat(Merge):
    """Branches joined along ``dim`` (counting the batch axis, as torch.cat: 1 is channels), after
    a learned tensor of ``weight_shape`` per sample when one is given (a ViT's class token,
    expanded to the batch and joined first: counted as parameters).

    >>> Concat().merge(((64, 56, 56), (32, 56, 56))).output_shape
    (96, 56, 56)
    >>> fig = Concat(1, weight_shape=(1, 768)).infer((196, 768))
    >>> fig.output_shape, fig.params
    ((197, 768), 768)
    """

    spellings = (spell("concat", "cat", fields=("dim", "weight_shape"), positional=("dim",)),)

    dim: int = 1
    weight_shape: tuple[int, ...] | None = None

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        if self.weight_shape is not None:
            weight = tuple(self.weight_shape)
            if any(n < 1 for n in weight) or len(weight) != len(shapes[0]):
                raise ShapeError(f"weight_shape={format_shape(weight)} must be positive sizes, one per axis of a "
                                 f"sample ({len(shapes[0])})", hint="e.g. weight_shape=1x768 for a class token",
                                 field="weight_shape")
            figures = self._join((weight, *shapes))
            params = volume(weight)
            return replace(figures, params=params, tensors=(("weight", params),),
                           summary=f"learned {format_shape(weight)} and {len(shapes)} branch{'es' * (len(shapes) > 1)}, "
                                   f"dim {self.dim}")
        return self._join(shapes)

    def _join(self, shapes: tuple[Shape, ...]) -> Figures:
        # one branch is allowed, as torch.cat allows a list of one (DenseNet's first layer)
        ndim = len(shapes[0]) + 1
        if not isinstance(self.dim, int) or isinstance(self.dim, bool):
            raise ShapeError(f"dim={self.dim!r} must be one axis", hint="e.g. dim=1 (channels)", field="dim")
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise ShapeError("concat needs branches with the same number of axes",
                             hint="flatten or reshape the branches alike", field="from")
        if not -ndim <= self.dim < ndim or self.dim % ndim == 0:
            raise ShapeError(
                f"dim={self.dim} is not an axis of a {ndim}-dimensional batch that concat can join",
                hint="use dim=1 (channels, the default) or a spatial axis", field="dim")
        axis = self.dim % ndim - 1  # in the per-sample shape
        first = shapes[0]
        for index, shape in enumerate(shapes[1:], start=1):
            for a, (n, m) in enumerate(zip(first, shape)):
                if a != axis and n != m:
                    raise ShapeError(
                        f"concat along dim {self.dim} needs the other axes equal: {_branch(self, 0)} gives "
                        f"{format_shape(first)} but {_branch(self, index)} gives {format_shape(shape)} "
                        f"(axis {a + 1} differs by {abs(n - m)})",
                        hint="crop or pad the branches to agree, or change the strides before them",
                        field="from",
                    )
        output = tuple(sum(s[a] for s in shapes) if a == axis else n for a, n in enumerate(first))
        windows = None
        if axis > 0:  # joining along a spatial axis: positions no longer map one to one
            windows = tuple(Global(first[a + 1]) if a + 1 == axis else IDENTITY for a in range(len(first) - 1))
        return Figures("Concat", output, 0, 0, 0, windows, (), f"{len(shapes)} branches, dim {self.dim}")

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        if self.weight_shape is None:
            return lambda *xs: run.concatenate(xs, self.dim)
        learned = run.between(-1.0, 1.0, tuple(self.weight_shape))
        return lambda *xs: run.concatenate((learned[None].repeat(len(xs[0]), axis=0), *xs), self.dim)


def _branch(layer: Merge, index: int) -> str:
    if layer.inputs and index < len(layer.inputs):
        return f"branch '{layer.inputs[index]}'"
    return f"branch {index + 1}"


def _difference(a: Shape, b: Shape) -> str:
    if len(a) != len(b):
        return f"{len(a)} axes against {len(b)}"
    return ", ".join(f"axis {i} differs by {abs(x - y)}" for i, (x, y) in enumerate(zip(a, b)) if x != y)
