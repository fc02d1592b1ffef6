"""``torch.linalg.vector_norm`` and ``torch.clamp``: the pieces ``F.normalize`` is made of.

``F.normalize(x, p, dim, eps)`` runs as ``x / clamp_min(vector_norm(x, p, dim, keepdim=True), eps)``
(expanded to ``x``'s shape: a view, which the division's broadcasting is), as Swin V2's cosine
attention and XCiT's cross-covariance attention use it. Neither piece multiplies two tensors, so
neither has MACs; their FLOPs are counted as the reductions and activations count theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..sizes import volume
from .base import SAVES_OUTPUT, Figures, Layer, Shape, Use, format_tuple, saves_input
from .kind import spell
from .layout import reduced


@dataclass(frozen=True)
class VectorNorm(Layer):
    """``torch.linalg.vector_norm(x, ord, dim, keepdim)``: the ``ord``-norm of the values along ``dim``
    (batch counted), the axes kept as size 1 with ``keepdim``. ``dim`` is required here: without it
    PyTorch takes the norm of the whole batch, which convcalc keeps apart.

    FLOPs per element: a square and an add for ord 2, an absolute value (a comparison for ord 0) and an
    add for ord 1 and 0, an absolute value, a power and an add for any other ord; one add fewer per
    output (its first element starts the sum), and a root per output unless ord is 0 or 1.

    >>> fig = VectorNorm(2.0, -1, keepdim=True).infer((3, 64, 32))
    >>> fig.output_shape, fig.flops
    ((3, 64, 1), 12288)
    """

    spellings = (spell("vectornorm", "VectorNorm", "vector_norm", fields=("ord", "dim", "keepdim"),
                       positional=("ord", "dim"), required=("dim",)),)

    ord: float = 2.0
    dim: int | tuple[int, ...] | None = None
    keepdim: bool = False

    def infer(self, shape: Shape) -> Figures:
        axes, output, kept, windows = reduced("vector_norm", self.dim, self.keepdim, shape)
        n_in, n_out = volume(shape), volume(output)
        per_element = 2 if self.ord in (0.0, 1.0, 2.0) else 3
        roots = 0 if self.ord in (0.0, 1.0) else n_out
        flops = per_element * n_in - n_out + roots if n_in else 0
        return Figures("VectorNorm", output, 0, 0, flops, windows, (),
                       f"ord={self.ord:g} dim={format_tuple(self.dim)}" + (" keepdim" if self.keepdim else ""),
                       dims=kept, mixes_channels=0 in axes)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def saved(self, use: Use) -> list | None:
        return [saves_input(), SAVES_OUTPUT]  # linalg_vector_norm_backward reads the input and the norm

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        axes = tuple(sorted(a + 1 for a in reduced("vector_norm", self.dim, self.keepdim, x.shape[1:])[0]))
        p = float(self.ord)

        def norm(x):
            if p == 0:
                return (x != 0).sum(axis=axes, keepdims=self.keepdim).astype(x.dtype)
            if p == 2:
                return (x * x).sum(axis=axes, keepdims=self.keepdim) ** x.dtype.type(0.5)
            magnitudes = abs(x)
            if p < 0:  # a zero's negative power is infinite and the norm then 0, as in PyTorch (no warning)
                zero = magnitudes == 0
                magnitudes[zero] = 1
                powers = magnitudes ** x.dtype.type(p)
                powers[zero] = x.dtype.type("inf")
            else:
                powers = magnitudes ** x.dtype.type(p)
            return powers.sum(axis=axes, keepdims=self.keepdim) ** x.dtype.type(1 / p)

        return norm

    def explain_costs(self, report, batch: int) -> list[str]:
        return [f"FLOPs: the norm's powers, sums and roots = {report.flops:,}"]


@dataclass(frozen=True)
class Clamp(Layer):
    """``torch.clamp(x, min, max)`` (``clamp_min``, ``clamp_max``): each value held between the bounds
    given; where min exceeds max every value is max, as in PyTorch. A clamp with neither bound is
    refused, as PyTorch refuses it.

    FLOPs: a comparison per element for each bound given.

    >>> fig = Clamp(1e-12).infer((3, 64, 1))
    >>> fig.output_shape, fig.flops
    ((3, 64, 1), 192)
    """

    spellings = (spell("clamp", "Clamp", "clip", fields=("min", "max"), positional=("min", "max")),)

    min: float | None = None
    max: float | None = None

    def infer(self, shape: Shape) -> Figures:
        bounds = (self.min is not None) + (self.max is not None)
        if not bounds:
            raise SpecError("clamp needs min or max: at least one of 'min' or 'max' must not be None, as PyTorch "
                            "requires", hint="e.g. clamp:min=0 or clamp:0,6", field="min")
        notes = ()
        summary = f"[{'-inf' if self.min is None else f'{self.min:g}'}, " \
                  f"{'inf' if self.max is None else f'{self.max:g}'}]"
        return Figures("Clamp", tuple(shape), 0, 0, bounds * volume(shape), None, notes, summary)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def saved(self, use: Use) -> list | None:
        return [saves_input()] if self.min is not None or self.max is not None else []  # the mask from the input

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        low, high = (None if v is None else x.dtype.type(v) for v in (self.min, self.max))
        if low is None and high is None:
            return lambda x: x.copy()
        return lambda x: x.clip(low, high)  # NumPy's clip: the maximum, then the minimum, NaN kept

    def explain_costs(self, report, batch: int) -> list[str]:
        return [f"FLOPs: a comparison per element for each bound = {report.flops:,}"]
