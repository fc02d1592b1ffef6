"""From the size you want to the parameters you need.

Layers are written as tokens in which ``?`` marks an unknown (``p=?``, or
per axis ``p=?x?``). ``solve`` searches every unknown over a range: each
layer's candidates form a NumPy grid whose output sizes come from the same
formulas as the engine (``convcalc.sizes``), grouped by the shape they
produce; candidates that reach the target are then re-checked one by one
through the engine itself, so only configurations PyTorch accepts remain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..engine.analysis import analyse
from ..engine.errors import ConvcalcError, SpecError
from ..engine.layers import AvgPool, Conv, ConvTranspose, MaxPool, ZeroPad, figures_of
from ..engine.layers.base import Shape, per_axis
from ..engine.network import Network
from ..engine.sizes import (
    conv_output_size,
    pool_output_size,
    same_padding,
    transposed_output_size,
)
from ..readers.build import build_layer
from ..readers.registry import canonical_key
from ..readers.values import UNKNOWN

SOLVE_SCHEMA = "convcalc.solve/1"
# What ? may stand for, and where the search looks by default (--range changes it).
DEFAULT_RANGES = {
    "kernel_size": (1, 15), "stride": (1, 8), "padding": (0, 16), "dilation": (1, 8), "output_padding": (0, 7),
    "out_channels": (1, 1024),
}
SEARCHABLE_KINDS = (Conv, ConvTranspose, MaxPool, AvgPool)
MAX_COMBINATIONS = 2_000_000
MAX_CHECKED = 20_000
MAX_SEARCH_SIZE = 2**40
MAX_INPUT_SIZES = 100_000  # input sizes tried, each a whole-network check


@dataclass(frozen=True)
class Template:
    """A layer as written, some of its values unknown."""

    kind: object
    arguments: dict
    origin: object
    slots: tuple[tuple[str, int | None], ...]  # (PyTorch name, axis or None for every axis)


@dataclass(frozen=True)
class Solution:
    """One assignment of the unknowns, and the layers it gives."""

    values: dict
    layers: tuple
    output_shape: Shape


@dataclass(frozen=True)
class SolveResult:
    input_shape: Shape
    target: tuple
    solutions: tuple[Solution, ...]
    nearest: tuple[Shape, ...]
    searched: int

    def to_dict(self) -> dict:
        return {
            "schema": SOLVE_SCHEMA,
            "input_shape": list(self.input_shape),
            "target": None if self.target is None else list(self.target),
            "solutions": [{**s.values, "layers": [f"{r.type} {r.summary}".strip() for r in s.layers],
                           "output_shape": list(s.output_shape)} for s in self.solutions],
            "nearest": [list(shape) for shape in self.nearest],
            "searched": self.searched,
        }


def template_of(kind, arguments: dict, origin) -> Template:
    """Canonical argument names, and the unknowns they hold."""
    named = {canonical_key(kind, key): value for key, value in arguments.items()}
    slots = []
    for name, value in named.items():
        if value is UNKNOWN:
            slots.append((name, None))
        elif isinstance(value, tuple):
            slots.extend((name, axis) for axis, v in enumerate(value) if v is UNKNOWN)
    for name, _ in slots:
        if name not in DEFAULT_RANGES:
            raise SpecError(f"{name} cannot be solved for", hint=f"? may stand for {', '.join(DEFAULT_RANGES)}",
                            field=name, origin=origin)
    return Template(kind, named, origin, tuple(slots))


def _same_tf(layer: Conv, shape: Shape, lower: bool) -> list:
    """TensorFlow/ONNX 'SAME' for any stride: output ceil(n/s), the odd padding element
    at the end (SAME_UPPER) or the start (SAME_LOWER); a ZeroPad first where PyTorch's
    symmetric padding cannot say it."""
    rank = len(shape) - 1
    kernel, stride, dilation = (per_axis(getattr(layer, n), rank, n) for n in ("kernel_size", "stride", "dilation"))
    sides = []
    for n, k, s, d in zip(shape[1:], kernel, stride, dilation):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        small, large = total // 2, total - total // 2
        sides.append((large, small) if lower else (small, large))
    if all(b == e for b, e in sides):
        return [replace(layer, padding=tuple(b for b, _ in sides))]
    amounts = tuple(v for b, e in reversed(sides) for v in (b, e))  # PyTorch's order: last axis first
    return [ZeroPad(amounts, rank=layer.rank), replace(layer, padding=0)]


def _concrete(template: Template, values, shape: Shape) -> list:
    """The layers a template stands for with ``values`` for its unknowns, at ``shape``."""
    padding = template.arguments.get("padding")
    if padding in ("same_upper", "same_lower"):
        stripped = replace(template, arguments={**template.arguments, "padding": 0})
        return _same_tf(_build(stripped, values), shape, lower=padding == "same_lower")
    return [_build(template, values)]


def _build(template: Template, values) -> object:
    arguments = dict(template.arguments)
    for (name, axis), value in zip(template.slots, values):
        if axis is None:
            arguments[name] = int(value)
        else:
            parts = list(arguments[name])
            parts[axis] = int(value)
            arguments[name] = tuple(parts)
    for name, value in arguments.items():  # any ? left (an axis of a scalar unknown) takes its slot's value
        if isinstance(value, tuple) and UNKNOWN in value:
            raise SpecError(f"{name} still has an unknown", hint="write ? for every unknown axis", field=name)
    return build_layer(template.kind, arguments, template.origin)


def _grid(template: Template, ranges: dict) -> np.ndarray:
    axes = [np.arange(lo, hi + 1) for lo, hi in (ranges[name] for name, _ in template.slots)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _column(template: Template, grid: np.ndarray, name: str, rank: int, default):
    """Per-axis arrays (one value per grid row) for argument ``name``."""
    value = template.arguments.get(name, default)
    if value is None:
        value = default
    out = []
    for axis in range(rank):
        column = None
        for index, (slot, slot_axis) in enumerate(template.slots):
            if slot == name and slot_axis in (None, axis):
                column = grid[:, index]
        if column is None:
            known = value if isinstance(value, int) or isinstance(value, str) else per_axis(value, rank, name)[axis]
            column = np.full(len(grid), known if not isinstance(known, str) else 0)
        out.append(column)
    return out


def _output_sizes(template: Template, grid: np.ndarray, shape: Shape) -> np.ndarray:
    """Output shapes (rows) of the layer for every candidate row, by the engine's formulas."""
    rank = len(shape) - 1
    kernel = _column(template, grid, "kernel_size", rank, 1)
    dilation = _column(template, grid, "dilation", rank, 1)
    cls = template.kind.cls
    if cls in (MaxPool, AvgPool):
        stride = _column(template, grid, "stride", rank, None) if template.arguments.get("stride") is not None else kernel
    else:
        stride = _column(template, grid, "stride", rank, 1)
    padding = _column(template, grid, "padding", rank, 0)
    sizes = []
    for axis, n in enumerate(shape[1:]):
        k, s, d, p = kernel[axis], stride[axis], dilation[axis], padding[axis]
        if cls is Conv:
            written = template.arguments.get("padding")
            if written == "same":
                begin, end = same_padding(k, d)
            else:
                begin = end = p
            sizes.append(conv_output_size(n, k, s, begin, end, d))
        elif cls is ConvTranspose:
            op = _column(template, grid, "output_padding", rank, 0)[axis]
            sizes.append(transposed_output_size(n, k, s, p, op, d))
        else:
            ceil = bool(template.arguments.get("ceil_mode", False))
            sizes.append(pool_output_size(n, k, s, p, d if cls is MaxPool else 1, ceil))
    if cls in (Conv, ConvTranspose):
        channels = _column(template, grid, "out_channels", 1, shape[0])[0]
    else:
        channels = np.full(len(grid), shape[0])
    return np.stack([channels, *sizes], axis=1)


def _matches(shape: Shape, target) -> bool:
    """Whether ``shape`` is the target (None: any shape; None in it: any size there)."""
    if target is None:
        return True
    return len(shape) == len(target) and all(t is None or t == n for n, t in zip(shape, target))


def solve(input_shape: Shape, templates: list[Template], target, ranges: dict | None = None) -> SolveResult:
    """Every assignment of the unknowns that takes ``input_shape`` to ``target``
    (None in the target matches any size; a target of None, any shape).

    >>> from convcalc.readers.tokens import split_token
    >>> t = template_of(*split_token("conv:64,k=7,s=2,p=?"))
    >>> [s.values for s in solve((3, 224, 224), [t], (64, 112, 112)).solutions]
    [{'padding': 3}]
    """
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    if max(input_shape, default=0) > MAX_SEARCH_SIZE or any(high > MAX_SEARCH_SIZE for _, high in ranges.values()):
        # the grids are 64-bit integers: larger sizes could overflow in the size formulas
        raise SpecError(f"solve searches sizes and values up to {MAX_SEARCH_SIZE:,}", hint="use smaller sizes",
                        field="input")
    solved = [i for i, t in enumerate(templates) if t.slots]
    for i in solved:
        if templates[i].kind.cls not in SEARCHABLE_KINDS:
            raise SpecError(f"layer {i + 1}: unknowns are solved in convolutions and pooling layers",
                            hint="remove the ? from this layer", field="*", origin=templates[i].origin)
    _check_size(templates, ranges)
    # Groups of candidates that share a shape: shape -> rows of unknown values so far.
    groups: dict[Shape, np.ndarray] = {tuple(input_shape): np.zeros((1, 0), dtype=np.int64)}
    searched = 1
    for index, template in enumerate(templates):
        following: dict[Shape, list] = {}
        if not template.slots:
            for shape, rows in groups.items():
                try:
                    out = shape
                    for layer in _concrete(template, (), shape):
                        out = figures_of(layer, (out,)).output_shape
                except ConvcalcError as err:
                    if len(groups) == 1:  # a layer every candidate meets: say why it fails
                        raise err.located(layer=index + 1, origin=template.origin)
                    continue
                following.setdefault(out, []).append(rows)
        else:
            grid = _grid(template, ranges)
            searched *= len(grid)
            _step(template, grid, groups, following)
        groups = {shape: np.vstack(parts) for shape, parts in following.items()}
        if not groups:
            break
    candidates = [rows for shape, rows in groups.items() if _matches(shape, target)]
    solutions = []
    if candidates:
        rows = np.vstack(candidates)
        # the first MAX_CHECKED in order, over every matching shape: each is a whole-network check
        order = np.lexsort(rows.T[::-1]) if rows.shape[1] else np.arange(len(rows))
        for row in rows[order[:MAX_CHECKED]].tolist():
            solution = _verify(input_shape, templates, tuple(row), target)
            if solution is not None:
                solutions.append(solution)
    nearest = () if solutions or target is None else tuple(sorted(
        groups, key=lambda s: (sum(abs(n - (t if t is not None else n)) for n, t in zip(s, target)), s))[:5])
    solutions.sort(key=lambda s: tuple(_sort_key(v) for v in s.values.values()))
    return SolveResult(tuple(input_shape), None if target is None else tuple(target), tuple(solutions), nearest,
                       searched)


def _step(template: Template, grid: np.ndarray, groups: dict, following: dict) -> None:
    """Extend every group's rows by each grid row the layer accepts at the group's shape, and
    regroup them all by the shape they give: NumPy work over the rows, one grouping per layer."""
    parts, outputs = [], []
    for shape, rows in groups.items():
        sizes = _output_sizes(template, grid, shape)
        valid = np.all(sizes[:, 1:] >= 1, axis=1) & (sizes[:, 0] >= 1)
        if not valid.any():
            continue
        kept, sizes = grid[valid], sizes[valid]
        parts.append(np.hstack([np.repeat(rows, len(kept), axis=0), np.tile(kept, (len(rows), 1))]))
        outputs.append(np.tile(sizes, (len(rows), 1)))
    if not parts:
        return
    rows, shapes = np.vstack(parts), np.vstack(outputs)
    unique, inverse = np.unique(shapes, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    # each shape's rows in one pass, in the order they came (a mask per shape would be quadratic)
    by_shape = np.split(rows[np.argsort(inverse, kind="stable")],
                        np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1])
    for out, chosen in zip(unique.tolist(), by_shape):
        following.setdefault(tuple(out), []).append(chosen)


def _check_size(templates: list[Template], ranges: dict) -> None:
    """Refuse, before any grid is made, a search whose combinations (the product of every
    unknown's range, over all layers) exceed MAX_COMBINATIONS: the rows kept while
    searching, and the time, grow with that product, not with the layers written.

    >>> from convcalc.readers.tokens import split_token
    >>> pads = [template_of(*split_token("conv:8,k=3,p=?"))] * 8
    >>> try:
    ...     _check_size(pads, {"padding": (0, 1000)})
    ... except SpecError as err:
    ...     print(err.message)
    the search has more than 2,000,000 combinations: 1,001 (1.padding) x 1,001 (2.padding) x 1,001 (3.padding) x ...
    """
    slots = [(index + 1, name, axis) for index, t in enumerate(templates) for name, axis in t.slots]
    total = 1
    for layer, name, axis in slots:
        low, high = ranges[name]
        total *= max(high - low + 1, 0)
        if total > MAX_COMBINATIONS:
            break
    else:
        return
    def written(layer, name, axis):
        low, high = ranges[name]
        where = f"{layer}." if len(templates) > 1 else ""
        return f"{max(high - low + 1, 0):,} ({where}{name}{'' if axis is None else f' axis {axis}'})"
    shown = " x ".join(written(*slot) for slot in slots[:3]) + (" x ..." if len(slots) > 3 else "")
    raise SpecError(f"the search has more than {MAX_COMBINATIONS:,} combinations: {shown}",
                    hint="narrow it with --range, e.g. --range p=0..8, or fix some values", field="range")


def _sort_key(value):
    return tuple(value) if isinstance(value, list) else (value,)


def _verify(input_shape, templates, row, target) -> Solution | None:
    """Build the layers for one candidate and let the engine accept or refuse them."""
    layers, values, at, shape = [], {}, 0, tuple(input_shape)
    many = sum(1 for t in templates if t.slots) > 1
    for index, template in enumerate(templates):
        chosen = row[at : at + len(template.slots)]
        at += len(template.slots)
        try:
            built = _concrete(template, chosen, shape)
            for layer in built:
                shape = figures_of(layer, (shape,)).output_shape
        except ConvcalcError:
            return None
        layers.extend(built)
        for name, _ in dict.fromkeys(template.slots):
            value = getattr(built[-1], name)
            axes = per_axis(value, len(input_shape) - 1, name) if not isinstance(value, int) else (value,)
            values[f"{index + 1}.{name}" if many else name] = axes[0] if len(set(axes)) == 1 else list(axes)
        if template.arguments.get("padding") in ("same_upper", "same_lower"):
            pad = built[0].padding if len(built) > 1 else built[-1].padding
            pad = list(pad) if isinstance(pad, tuple) and len(set(pad)) > 1 else (pad[0] if isinstance(pad, tuple) else pad)
            values[f"{index + 1}.padding" if many else "padding"] = pad
    try:
        analysis = analyse(Network(tuple(input_shape), tuple(layers)))
    except ConvcalcError:
        return None
    if not _matches(analysis.output_shape, target):
        return None
    return Solution(values, analysis.layers, analysis.output_shape)
