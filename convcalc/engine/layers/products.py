"""Matrix products: ``torch.matmul`` and ``bmm`` of two branches, or of a branch and a learned
weight, with ``baddbmm``'s added term.

Shapes are per sample (the batch axis left out), so both operands need at least two axes of
their own: a product whose rows or columns would be the batch axis mixes the samples, which
convcalc keeps apart. The leading axes broadcast as PyTorch broadcasts them.

Costs: every output element is a dot product of length k, so MACs are the output's elements
times k; FLOPs are twice the MACs (``torch.utils.flop_counter`` counts the same), plus one
per output element for an added term and one for each scaling by alpha or beta other than 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BatchAxisError, ShapeError
from ..sizes import volume
from ..windows import Global
from .base import Figures, Shape, Use, format_shape, gradient_products, saves_batched, saves_folded, times_batch
from .kind import spell
from .merge import Merge


def broadcast_leading(a: Shape, b: Shape, what: str) -> Shape:
    """PyTorch's broadcasting of two operands' leading (batch-like) axes, aligned at the right."""
    width = max(len(a), len(b))
    a1, b1 = (1,) * (width - len(a)) + tuple(a), (1,) * (width - len(b)) + tuple(b)
    out = []
    for m, n in zip(a1, b1):
        if m != n and 1 not in (m, n):
            raise ShapeError(f"{what}: the leading axes {format_shape(a) or '()'} and {format_shape(b) or '()'} "
                             "do not broadcast", hint="make them agree, or give one size 1 there", field="from")
        out.append(max(m, n) if 0 not in (m, n) else 0)
    return tuple(out)


@dataclass(frozen=True)
class MatMul(Merge):
    """``torch.matmul(a, b)`` of two branches, ``a @ weight`` with a learned ``weight_shape``
    (k x m, counted as parameters), and ``bmm`` / ``baddbmm`` (``beta * input + alpha * a @ b``:
    a third branch, broadcast to the product).

    >>> fig = MatMul().merge(((12, 197, 64), (12, 64, 197)))
    >>> fig.output_shape, fig.macs
    ((12, 197, 197), 29805312)
    """

    spellings = (spell("matmul", fields=("weight_shape",)),
                 spell("bmm", fields=("weight_shape",), batched=True),
                 spell("baddbmm", fields=("beta", "alpha"), batched=True, added=True))

    weight_shape: tuple[int, ...] | None = None
    beta: float = 1.0
    alpha: float = 1.0
    batched: bool = False  # bmm: exactly one leading axis besides the batch (3-D tensors)
    added: bool = False  # baddbmm: the first branch is added to the product

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        name = "BAddBMM" if self.added else "BMM" if self.batched else "MatMul"
        wanted = 2 + self.added - (self.weight_shape is not None)
        if len(shapes) != wanted:
            raise ShapeError(f"{name} reads {wanted} branch(es) but receives {len(shapes)}",
                             hint='name them with from, e.g. {"type": "matmul", "from": ["q", "k"]}', field="from")
        operands = list(shapes[self.added:])
        if self.weight_shape is not None:
            if len(self.weight_shape) != 2 or any(n < 1 for n in self.weight_shape):
                raise ShapeError(f"weight_shape={format_shape(self.weight_shape)} is not a k x m matrix",
                                 hint="e.g. weight_shape=768x3072", field="weight_shape")
            operands.append(tuple(self.weight_shape))
        a, b = operands
        for shape, label in ((a, "first"), (b, "second")):
            if len(shape) < 2 and not (label == "second" and self.weight_shape is not None):
                raise BatchAxisError(
                    f"{name}'s {label} operand {format_shape(shape)} has one axis per sample: with the batch it is a "
                    "matrix whose rows are the samples, which convcalc keeps apart",
                    hint="give each sample a matrix (unsqueeze it), or use linear for a product with a weight",
                    field="from")
        if self.batched and (len(a) != 2 or len(b) != 2):
            raise ShapeError(f"{name} needs 3-D tensors (batch x n x k) but receives {format_shape(a)} and "
                             f"{format_shape(b)} per sample", hint="use matmul for other ranks", field="from")
        if self.weight_shape is None and len(a) != len(b):
            raise BatchAxisError(f"{name} of {format_shape(a)} and {format_shape(b)}: operands of different ranks "
                                 "would broadcast the batch axis of one against a data axis of the other",
                                 hint="give the smaller operand size-1 axes so the ranks agree", field="from")
        if a[-1] != b[-2]:
            raise ShapeError(f"{name}: {format_shape(a)} @ {format_shape(b)} needs the first's last size ({a[-1]}) "
                             f"to equal the second's next-to-last ({b[-2]})",
                             hint="transpose one operand, or fix the layer that makes it", field="from")
        leading = broadcast_leading(a[:-2], b[:-2], name) if self.weight_shape is None else a[:-2]
        output = (*leading, a[-2], b[-1])
        if self.added:
            broadcast_leading(shapes[0], output, f"{name}'s added input")
        macs = volume(output) * a[-1]
        extra = volume(output) * (self.added + (self.alpha != 1) + (self.added and self.beta != 1))
        params = volume(self.weight_shape) if self.weight_shape is not None else 0
        windows = tuple(Global(n) for n in shapes[0][1:])  # every output reads whole rows and columns
        summary = f"{format_shape(a)} @ {format_shape(b)}" + (" + input" if self.added else "")
        rank = len(output)  # each output element reads a row of the first operand and a column of the second
        continues = (*([aligned_right(shapes[0], rank)] if self.added else []),
                     (*aligned_right(a[:-1], rank - 1), None),
                     *([(*aligned_right(b[:-2], rank - 2), None, rank - 1)] if self.weight_shape is None else []))
        return Figures(name, output, params, macs, 2 * macs + extra, windows, (), summary, mixes_channels=True,
                       continues=continues,
                       tensors=(("weight", params),) if params else ())

    def saved(self, use: Use) -> list | None:
        # each operand's gradient needs the other: saved when the other one needs a gradient
        # (as torch.matmul reads them: x @ weight folds x to rows, as a linear layer does; two branches
        # go to bmm expanded and folded to one batch of matrices, a copy where that is no view)
        grads = use.inputs_grad[self.added:]
        if self.weight_shape is not None:
            return [saves_folded(self.added)] if use.trainable else []
        a, b = self.added, self.added + 1
        return ([saves_batched(b, a)] if grads[0] else []) + ([saves_batched(a, b)] if grads[1] else [])

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # a @ b: a's gradient is grad @ b^T, b's is a^T @ grad (summed over broadcast axes after), each as
        # large as the forward product and each only when that operand needs a gradient; a learned
        # weight needs one when it is trained. baddbmm's added input's gradient is grad times beta.
        grads = use.inputs_grad[self.added:]
        if self.weight_shape is not None:
            return gradient_products(forward_macs, grads[0], use.trains("weight"))
        return gradient_products(forward_macs, grads[0], grads[1])

    def prepare(self, run, x):
        weight = None if self.weight_shape is None else run.uniform(tuple(self.weight_shape), self.weight_shape[0])

        def call(*xs):
            a, b = (xs[-1], weight) if weight is not None else xs[-2:]
            y = run.F.matmul(a, b)
            if self.alpha != 1:
                y = y * x.dtype.type(self.alpha)
            if self.added:
                y = y + xs[0] * x.dtype.type(self.beta)
            return y.astype(x.dtype, copy=False)

        return call

    def explain_costs(self, report, batch: int) -> list[str]:
        out = report.output_shape
        return [f"MACs: {format_shape(out)} outputs x {report.macs // batch // max(volume(out), 1)} = "
                f"{times_batch(report, batch)}"]


def aligned_right(shape, rank: int) -> tuple[int, ...]:
    """The output axes a broadcast operand's axes continue: aligned on the right."""
    return tuple(range(rank - len(shape), rank))
