"""``torch.einsum`` of one or two operands, written per sample (the batch's letter left out).

Costs as PyTorch computes a two-operand einsum: letters in one operand only that the output does
not keep are summed away first (no multiplications), and what remains is one batched product,
whose multiply-accumulates are the product of the sizes of every letter it spans (the output's
and the contracted ones); FLOPs are twice that, as ``torch.utils.flop_counter`` counts the
``bmm`` it becomes. Without a contracted letter (an outer or elementwise product) PyTorch
multiplies with broadcasting instead: no MACs, one FLOP per output element. One operand (a
transpose, a trace, a sum) has no MACs. An einsum of three or
more operands is refused: PyTorch may reorder their contractions, which changes the count.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from .. import strides
from ..errors import ShapeError, SpecError
from ..sizes import volume
from ..windows import Global
from .base import Figures, Shape, Use, format_shape, gradient_products, saves_einsum
from .kind import arg, spell
from .merge import Merge
from .rules import text


def parse_equation(equation: str, operands: int) -> tuple[tuple[str, ...], str]:
    """The operands' letters and the output's, with PyTorch's implicit output (the letters that appear
    once, in alphabetical order) when there is no ``->``. A ``;`` separates operands as a comma does
    (commas separate a token's arguments: ``einsum:nd;md->nm``).

    >>> parse_equation("nd,md->nm", 2)
    (('nd', 'md'), 'nm')
    >>> parse_equation("ij,jk", 2)
    (('ij', 'jk'), 'ik')
    """
    clean = equation.replace(" ", "").replace(";", ",")
    left, arrow, right = clean.partition("->")
    inputs = tuple(left.split(","))
    letters = "".join(inputs) + right
    if "." in letters or not all(c.isascii() and c.isalpha() for c in letters):
        raise SpecError(f"einsum equation {equation!r} must use letters only (no ellipsis)",
                        hint="name every axis with a letter, e.g. nd,md->nm", field="equation")
    if len(inputs) != operands:
        raise ShapeError(f"einsum equation {equation!r} has {len(inputs)} operand(s) but reads {operands}",
                         hint="give one term per operand, separated by commas", field="equation")
    if not arrow:
        right = "".join(sorted(c for c in set(left.replace(",", "")) if left.count(c) == 1))
    if len(set(right)) != len(right) or not set(right) <= set("".join(inputs)):
        raise ShapeError(f"einsum output {right!r} repeats a letter or names one no operand has",
                         hint="each output letter once, from the operands", field="equation")
    return inputs, right


@dataclass(frozen=True)
class Einsum(Merge):
    """``torch.einsum(equation, ...)`` per sample: each branch's letters name its per-sample axes; a
    learned last operand of ``weight_shape`` (counted as parameters) may follow the branches; when it is
    gathered from a table (MViT's relative positions, indexed from 2n - 1 rows into n x n) or made from
    several parameters, ``table`` gives their count: those are its parameters.

    >>> fig = Einsum("nd,md->nm").merge(((197, 64), (197, 64)))
    >>> fig.output_shape, fig.macs
    ((197, 197), 2483776)
    >>> Einsum("nd,de->ne", weight_shape=(64, 32)).infer((197, 64)).params
    2048
    """

    spellings = (spell("einsum", fields=("equation", "weight_shape", "table"), positional=("equation",),
                       required=("equation",)),)

    equation: str = arg(rule=text)
    weight_shape: tuple[int, ...] | None = None
    table: int | None = None

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        operands = list(shapes) + ([tuple(self.weight_shape)] if self.weight_shape is not None else [])
        if len(operands) > 2:
            raise ShapeError(f"einsum of {len(operands)} operands: convcalc reads one or two (PyTorch may reorder "
                             "the contractions of more, which changes the count)",
                             hint="write it as two-operand einsums in sequence", field="equation")
        terms, output = parse_equation(self.equation, len(operands))
        sizes: dict[str, int] = {}
        for term, shape in zip(terms, operands):
            if len(term) != len(shape):
                raise ShapeError(f"einsum term {term!r} names {len(term)} axes but its operand is {format_shape(shape)}",
                                 hint="one letter per axis of the operand, the batch left out", field="equation")
            for letter, size in zip(term, shape):
                if sizes.setdefault(letter, size) != size:
                    raise ShapeError(f"einsum letter {letter!r} is {sizes[letter]} in one place and {size} in another",
                                     hint="the same letter needs the same size", field="equation")
        shape = tuple(sizes[c] for c in output)
        contracted = set(terms[0]) & set(terms[1]) - set(output) if len(terms) == 2 else set()
        # a contraction is one batched product, as PyTorch computes it; without one it is a broadcast product
        # (one multiplication per output element, no accumulation), and one operand is a view or a sum
        macs = volume(sizes[c] for c in set(output) | contracted) if contracted else 0
        flops = 2 * macs if contracted else volume(shape) if len(terms) == 2 else 0
        if self.table is not None and (self.weight_shape is None or self.table < 1):
            raise SpecError(f"table={self.table} must count the learned values the weight_shape operand is made "
                            "from: at least 1, and only with weight_shape",
                            hint="e.g. weight_shape=56x7x96,table=10656", field="table")
        params = (self.table or volume(self.weight_shape)) if self.weight_shape is not None else 0
        return Figures("Einsum", shape, params, macs, flops, tuple(Global(n) for n in shape[1:]), (),
                       self.equation.replace(" ", ""), mixes_channels=True,
                       continues=tuple(tuple(output.index(c) if c in output else None for c in term)
                                       for term in terms[:len(shapes)]),
                       tensors=(("weight", params),) if params else ())

    def full_terms(self, branches: int) -> tuple[tuple[str, ...], str]:
        """The equation as PyTorch runs it on whole batches: the branches' and the output's letters with a
        batch letter before them (a learned operand has none).

        >>> Einsum("nd,md->nm").full_terms(2)
        (('and', 'amd'), 'anm')
        """
        terms, output = parse_equation(self.equation, branches + (self.weight_shape is not None))
        batch = next(c for c in string.ascii_letters if c not in "".join(terms))
        return tuple(batch + t if i < branches else t for i, t in enumerate(terms)), batch + output

    def saved(self, use: Use) -> list | None:
        # torch 2.13 runs one bmm (or a broadcast product) on the operands permuted and reshaped: what it
        # keeps depends on their layout (engine/strides.einsum_plan); an operand gathered from a table is
        # made in forward, which convcalc does not follow
        if self.table is not None:
            return None
        return [saves_einsum()] if len(use.inputs) + (self.weight_shape is not None) == 2 else []  # (or a view, a sum)

    def plan(self, fulls: tuple[Shape, ...], laid: tuple[tuple[int, ...], ...], grads: tuple[bool, ...]):
        """``strides.einsum_plan`` for branches of these full shapes and strides (batch first) and a learned
        operand in its own contiguous storage; None where it is not followed (one operand, a branch laid
        out otherwise than the equation has it)."""
        terms, output = self.full_terms(len(fulls))
        if len(terms) != 2 or any(len(full) != len(term) or len(st) != len(full)
                                  for full, st, term in zip(fulls, laid, terms)):
            return None
        operands = tuple(zip(fulls, laid))
        if self.weight_shape is not None:
            operands += ((tuple(self.weight_shape), strides.contiguous(tuple(self.weight_shape))),)
        return strides.einsum_plan(terms, output, operands, tuple(grads[:2]))

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """The product's result permuted back to the output's letters (a view of it)."""
        plan = self.plan(tuple((full[0], *shape) for shape in shapes), laid, (False, False))
        return plan[1] if plan is not None else None

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # a contraction is one batched product: each operand's gradient is one as large, when that operand
        # needs one (a learned one when trained); letters summed away come back by broadcasting, and a
        # broadcast product's gradients are products by the other operand, element by element: no MACs
        grads = (*use.inputs_grad, *((use.trains("weight"),) if self.weight_shape is not None else ()))
        return gradient_products(forward_macs, *grads[:2])

    def prepare(self, run, x):
        operands = self.equation.replace(";", ",").partition("->")[0].count(",") + 1
        terms, output = self.full_terms(operands - (self.weight_shape is not None))
        weight = run.between(-1.0, 1.0, tuple(self.weight_shape)) if self.weight_shape is not None else None
        spec = ",".join(terms) + "->" + output
        return lambda *xs: run.F.einsum(spec, *xs, *([weight] if weight is not None else []))
