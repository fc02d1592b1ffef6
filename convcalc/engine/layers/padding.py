"""Padding layers: zeros, a constant, reflection, replication and circular, 1d to 3d.

Amounts are per side, last axis first, as PyTorch orders them. Padded
positions count as positions for receptive fields, as in the literature.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import Shift
from .base import Figures, Layer, Shape, Use, format_shape, saves_input, spatial_rank
from .kind import arg, ranked, spell
from .rules import word
PAD_MODES = ("constant", "reflect", "replicate", "circular")
_CLASS = {"constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
          "circular": "CircularPad"}


def _sides(padding, rank: int) -> tuple[tuple[int, int], ...]:
    """(begin, end) per padded axis, first axis first."""
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    if len(padding) != 2 * rank:
        raise SpecError(
            f"padding has {len(padding)} values but a {rank}d input needs 1 or {2 * rank} "
            "(begin and end of each axis, last axis first)",
            hint="e.g. pad:1 or pad:" + "x".join(["1"] * (2 * rank)),
            field="padding",
        )
    pairs = [(padding[2 * i], padding[2 * i + 1]) for i in range(rank)]
    return tuple(reversed(pairs))


@dataclass(frozen=True)
class ZeroPad(Layer):
    """``torch.nn.ZeroPad1d/2d/3d``: per-side amounts, last axis first, as PyTorch orders them.

    >>> ZeroPad((0, 1, 0, 1)).infer((3, 224, 224)).output_shape
    (3, 225, 225)
    """

    spellings = ranked(("pad", "zeropad"), "ZeroPad", fields=("padding",), positional=("padding",),
                       required=("padding",))

    padding: int | tuple[int, ...]
    rank: int | None = arg(None, internal=True)

    def sides(self, rank: int) -> tuple[tuple[int, int], ...]:
        """(begin, end) per spatial axis, first axis first."""
        return _sides(self.padding, rank)

    def infer(self, shape: Shape) -> Figures:
        if self.rank is not None and len(shape) != self.rank + 1:  # ZeroPadNd pads the last N axes of any tensor
            figures = Pad(self.padding, 0.0, "constant", rank=self.rank).infer(shape)
            return replace(figures, type=f"ZeroPad{self.rank}d")
        rank = spatial_rank(shape, f"ZeroPad{self.rank}d" if self.rank else "ZeroPad", self.rank)
        sides = self.sides(rank)
        out_sizes = tuple(n + b + e for n, (b, e) in zip(shape[1:], sides))
        if any(n < 0 for n in out_sizes):
            raise ShapeError(
                f"negative padding crops more than the input {format_shape(shape)} has",
                hint="use smaller negative amounts",
                field="padding",
            )
        windows = tuple(Shift(b) for b, _ in sides)
        summary = " ".join(f"{b}+{e}" for b, e in sides)
        return Figures(f"ZeroPad{rank}d", (shape[0], *out_sizes), 0, 0, 0, windows, (), summary)

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        amounts = self.padding if isinstance(self.padding, tuple) else (self.padding,) * (2 * (x.ndim - 2))
        return lambda x: run.F.pad(x, amounts)


@dataclass(frozen=True)
class Pad(Layer):
    """``torch.nn.ConstantPad/ReflectionPad/ReplicationPad/CircularPad 1d-3d`` and ``F.pad``:
    pads the last ``rank`` axes (rank None: every spatial axis).

    >>> Pad((1, 1, 2, 0), mode="reflect", rank=2).infer((3, 8, 8)).output_shape
    (3, 10, 10)
    """

    # ConstantPad, ReflectionPad, ... : the rank from the input, or fixed by PyTorch's class name
    spellings = tuple(spell(f"{_CLASS[mode]}{r}d" if r else _CLASS[mode].lower(), *((_CLASS[mode],) if not r else ()),
                            fields=("padding", "value") if mode == "constant" else ("padding",),
                            positional=("padding",), required=("padding",), rank=r, mode=mode)
                      for mode in PAD_MODES for r in (None, 1, 2, 3))

    padding: int | tuple[int, ...]
    value: float = 0.0
    mode: str = arg("constant", rule=word(*PAD_MODES), internal=True)
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        if self.mode not in PAD_MODES:
            raise SpecError(f"mode={self.mode!r} is not one of {', '.join(PAD_MODES)}", hint="e.g. mode=reflect",
                            field="mode")
        if self.rank is None and not isinstance(self.padding, int) and len(self.padding) % 2 == 0:
            rank = len(self.padding) // 2  # F.pad: pairs from the last axis backwards
        else:
            rank = self.rank or len(shape) - 1
        type_name = f"{_CLASS[self.mode]}{rank}d"
        if self.mode == "constant" and len(shape) == rank - 1:
            raise BatchAxisError(f"{type_name} of {format_shape(shape)} per sample would pad the batch axis",
                                 hint="give the input more axes, or pad fewer", field="*")
        if rank < 1 or len(shape) < rank or (self.mode != "constant" and len(shape) not in (rank, rank + 1)):
            raise ShapeError(f"{type_name} pads {rank} axes but receives {format_shape(shape)}",
                             hint="drop the rank from the layer name so it follows the input", field="*")
        sides = _sides(self.padding, rank)
        first = len(shape) - rank
        out = list(shape)
        for axis, (n, (b, e)) in enumerate(zip(shape[first:], sides), start=first):
            if self.mode == "reflect" and not (b < n and e < n):
                raise ShapeError(f"padding size should be less than the corresponding input dimension, but got "
                                 f"padding ({b}, {e}) at an axis of {n}", hint="pad less, or use replicate",
                                 field="padding")
            if self.mode == "circular" and not (b <= n and e <= n):
                raise ShapeError(f"padding value causes wrapping around more than once: ({b}, {e}) on an axis of "
                                 f"{n}", hint="pad at most the axis size", field="padding")
            if self.mode != "constant" and (b < 0 or e < 0):
                raise ShapeError(f"{self.mode} padding must be non-negative (got {b}, {e})", hint="use zeros to crop",
                                 field="padding")
            out[axis] = n + b + e
            if out[axis] < (1 if self.mode != "constant" else 0):
                raise ShapeError(f"the input size {n}, plus padding {b} and {e}, resulted in an output size of "
                                 f"{out[axis]}", hint="use smaller negative amounts", field="padding")
        windows = tuple(Shift(sides[axis + 1 - first][0]) if axis + 1 >= first else Shift(0)
                        for axis in range(len(shape) - 1))
        summary = " ".join(f"{b}+{e}" for b, e in sides) + (f" value={self.value:g}" if self.value else "")
        return Figures(type_name, tuple(out), 0, 0, 0, windows, (), summary,
                       axis0=Shift(sides[0][0]) if first == 0 else None)

    def saved(self, use: Use) -> list | None:
        return [] if self.mode in ("constant", "circular") else [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        amounts = self.padding if isinstance(self.padding, tuple) else (self.padding,) * (2 * (self.rank or x.ndim - 2))
        return lambda x: run.F.pad_mode(x, amounts, self.mode, self.value)
