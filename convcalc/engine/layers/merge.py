"""Layers that join branches: add (residual connections) and concat (U-Net skips)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..receptive import IDENTITY, Global
from ..sizes import volume
from .base import Figures, Layer, Shape, format_shape


@dataclass(frozen=True)
class Merge(Layer):
    """A layer reading two or more branches (named with ``from``)."""

    def infer(self, shape: Shape) -> Figures:
        return self.merge((shape,))

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_count(self, shapes) -> None:
        if len(shapes) < 2:
            kind = type(self).__name__.lower()
            raise ShapeError(
                f"{kind} joins two or more branches but receives {len(shapes)}",
                hint=f'name the branches it reads, e.g. {{"type": "{kind}", "from": ["a", "b"]}}',
                field="from",
            )


@dataclass(frozen=True)
class Add(Merge):
    """Elementwise sum of branches of one shape, as a residual connection computes it.

    >>> Add().merge(((64, 56, 56), (64, 56, 56))).flops
    200704
    """

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        self._check_count(shapes)
        first = shapes[0]
        for index, shape in enumerate(shapes[1:], start=1):
            if shape != first:
                raise ShapeError(
                    f"add needs branches of one shape: {_branch(self, 0)} gives {format_shape(first)} but "
                    f"{_branch(self, index)} gives {format_shape(shape)} ({_difference(first, shape)})",
                    hint="make the branches agree, e.g. a 1x1 convolution with the right stride on the shortcut",
                    field="from",
                )
        return Figures("Add", first, 0, 0, (len(shapes) - 1) * volume(first), None, (), f"{len(shapes)} branches")


@dataclass(frozen=True)
class Concat(Merge):
    """Branches joined along ``dim`` (counting the batch axis, as torch.cat: 1 is channels).

    >>> Concat().merge(((64, 56, 56), (32, 56, 56))).output_shape
    (96, 56, 56)
    """

    dim: int = 1

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        self._check_count(shapes)
        ndim = len(shapes[0]) + 1
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


def _branch(layer: Merge, index: int) -> str:
    if layer.inputs and index < len(layer.inputs):
        return f"branch '{layer.inputs[index]}'"
    return f"branch {index + 1}"


def _difference(a: Shape, b: Shape) -> str:
    if len(a) != len(b):
        return f"{len(a)} axes against {len(b)}"
    return ", ".join(f"axis {i} differs by {abs(x - y)}" for i, (x, y) in enumerate(zip(a, b)) if x != y)
