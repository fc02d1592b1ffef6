"""Searches over a whole network rather than over layer arguments: the input sizes a network
accepts, and how many layers (or which dilations) reach a receptive field."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.analysis import analyse
from ..engine.errors import ConvcalcError, SpecError
from ..engine.layers.base import Shape
from ..engine.network import Network
from .solve import MAX_INPUT_SIZES, SOLVE_SCHEMA, Template, _build

MAX_INPUT_CHECKS = 1_000_000  # input sizes tried times the network's layers


@dataclass(frozen=True)
class InputSizes:
    """The input sizes a network accepts, within a range."""

    template: tuple  # the input shape, None where ? stood
    accepted: tuple[int, ...]
    low: int
    high: int

    @property
    def smallest(self) -> int | None:
        return self.accepted[0] if self.accepted else None

    def pattern(self) -> str:
        """The accepted sizes in words: every k-th from the smallest, or a list."""
        sizes = self.accepted
        if len(sizes) < 3:
            return ", ".join(map(str, sizes)) or "none"
        step = sizes[1] - sizes[0]
        if all(b - a == step for a, b in zip(sizes, sizes[1:])) and sizes[-1] + step > self.high:
            return f"{sizes[0]}, {sizes[1]}, ..., {sizes[-1]}: every {step} from {sizes[0]}"
        return ", ".join(map(str, sizes))

    def to_dict(self) -> dict:
        return {"schema": SOLVE_SCHEMA, "input": [None if n is None else n for n in self.template],
                "range": [self.low, self.high], "accepted": list(self.accepted), "smallest": self.smallest,
                "pattern": self.pattern(),
                "solutions": [{"input_shape": [size if n is None else n for n in self.template]}
                              for size in self.accepted]}


def solve_input(template: tuple, layers: tuple, low: int = 1, high: int = 512) -> InputSizes:
    """The sizes ? in the input may take (one size for every ? axis) for which every
    layer is valid and every add and concat lines up.

    >>> from dataclasses import replace
    >>> from convcalc import parse_layer
    >>> down = replace(parse_layer("conv:1,k=3,s=2"), name="down")
    >>> up = replace(parse_layer("convT:1,k=3,s=2"), name="up")
    >>> join = replace(parse_layer("add"), inputs=("up", "input"))  # a residual: sizes must come back equal
    >>> solve_input((1, None), (down, up, join), 1, 12).accepted
    (3, 5, 7, 9, 11)
    """
    if high - low + 1 > MAX_INPUT_SIZES:
        raise SpecError(f"--range input={low}..{high} asks for {high - low + 1:,} sizes, more than "
                        f"{MAX_INPUT_SIZES:,}", hint="narrow it, e.g. --range input=1..1024", field="range")
    if (high - low + 1) * len(layers) > MAX_INPUT_CHECKS:  # the work is a check of every layer at every size
        most = max(MAX_INPUT_CHECKS // max(len(layers), 1), 1)
        raise SpecError(f"--range input={low}..{high} asks for {high - low + 1:,} sizes of a {len(layers):,}-layer "
                        f"network, more than {MAX_INPUT_CHECKS:,} layer checks",
                        hint=f"narrow it to at most {most:,} sizes, e.g. --range input={low}..{low + most - 1}",
                        field="range")
    accepted = []
    for size in range(low, high + 1):  # a whole-network check per size: shapes only, no receptive fields
        shape = tuple(size if n is None else n for n in template)
        try:
            analyse(Network(shape, tuple(layers)), receptive_fields=False)
        except ConvcalcError:
            continue
        accepted.append(size)
    return InputSizes(tuple(template), tuple(accepted), low, high)


@dataclass(frozen=True)
class FieldPlan:
    """How many layers reach a receptive field, and with which dilations."""

    layers: tuple
    size: tuple[int, ...]
    dilations: tuple[int, ...]
    reached: bool


def plan_receptive_field(input_shape: Shape, template: Template, target: int, limit: int = 64) -> FieldPlan:
    """Repeat a layer until its receptive field reaches ``target`` on every axis. With
    ``d=?``, dilations double (1, 2, 4, ...): the classic schedule that grows it fastest.

    >>> from convcalc.readers.tokens import split_token
    >>> from convcalc.verbs.solve import template_of
    >>> plan = plan_receptive_field((1, 64, 64), template_of(*split_token("conv:1,k=3,p=same")), 9)
    >>> len(plan.layers), plan.size
    (4, (9, 9))
    """
    layers, dilations, best = [], [], None
    for count in range(1, limit + 1):
        dilation = 2 ** (count - 1) if template.slots else None
        values = [dilation] * len(template.slots)
        try:
            layer = _build(template, values)
            analysis = analyse(Network(tuple(input_shape), tuple([*layers, layer])))
        except ConvcalcError:
            break
        layers.append(layer)
        dilations.append(dilation or 1)
        best = analysis.layers[-1].receptive_field.size
        if all(s >= target for s in best):
            return FieldPlan(tuple(analysis.layers), best, tuple(dilations), True)
    final = analyse(Network(tuple(input_shape), tuple(layers))).layers if layers else ()
    return FieldPlan(tuple(final), best or (1,) * (len(input_shape) - 1), tuple(dilations), False)
