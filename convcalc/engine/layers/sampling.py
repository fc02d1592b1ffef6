"""Sampling at positions a tensor gives: ``torch.nn.functional.grid_sample`` (RAFT's correlation
lookup, spatial transformers).

Shapes are per sample. The input is ``(*lead, C, *in_spatial)`` and the grid ``(*lead, *out_spatial,
s)``, where ``s``, the grid's last size, is the number of spatial axes (2 or 3) and ``lead`` the axes
before (none in PyTorch's own per-sample view: input C x H x W, grid Ho x Wo x 2). Leading axes hold
a batch PyTorch sees merged with another size, as RAFT's lookup samples a ``(batch * h * w, 1, H, W)``
volume with a ``(batch * h * w, 9, 9, 2)`` grid: both inputs must have them, equal (PyTorch's batch
sizes must agree; nothing broadcasts). The output is ``(*lead, C, *out_spatial)``.

Costs, as interpolation counts them (``resample.py``): no parameters and no MACs
(``torch.utils.flop_counter`` counts nothing for ``grid_sampler``); FLOPs per output element mix
t taps per spatial axis, t^r multiplications and t^r - 1 additions over r axes: nearest 0,
bilinear 7 on 2 axes and 15 on 3, bicubic 31. Turning the grid into positions and weights is not
counted, as interpolate's source positions are not.

Receptive field: the positions an output reads depend on the grid's values, so each output
position may read any input position: read whole (``Global``) along the input's spatial axes,
position for position along the leading axes and the channels (samples and channels never mix).
Along the grid, each output position reads its own grid point.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError, SpecError
from ..sizes import volume
from ..windows import IDENTITY, Global
from .base import Figures, Shape, Use, format_shape, saves_input
from .kind import arg, spell
from .merge import Merge
from .rules import word

MODES = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("zeros", "border", "reflection")
TAPS = {"nearest": 1, "bilinear": 2, "bicubic": 4}  # input positions mixed per spatial axis


@dataclass(frozen=True)
class GridSample(Merge):
    """``F.grid_sample(input, grid, mode, padding_mode, align_corners)`` of two branches, input then
    grid: each output position takes the input's value at the point its grid entry names, from -1
    (the first position's edge, or its centre with ``align_corners``) to 1 (the last's).

    >>> fig = GridSample(align_corners=True).merge(((49, 1, 32, 32), (49, 9, 9, 2)))
    >>> fig.output_shape, fig.macs, fig.flops
    ((49, 1, 9, 9), 0, 27783)
    """

    spellings = (spell("grid_sample", "gridsample", fields=("mode", "padding_mode", "align_corners")),)

    mode: str = arg("bilinear", rule=word(*MODES))
    padding_mode: str = arg("zeros", rule=word(*PADDING_MODES))
    align_corners: bool = False

    def layout(self, shapes: tuple[Shape, ...]) -> tuple[Shape, int, Shape, Shape]:
        """The leading axes, the channels, the input's spatial sizes and the output's, checked as PyTorch
        checks them."""
        if self.mode not in MODES:
            raise SpecError(f"grid_sample's mode={self.mode!r} is not one of {', '.join(MODES)}",
                            hint="use mode=bilinear, nearest or bicubic", field="mode")
        if self.padding_mode not in PADDING_MODES:
            raise SpecError(f"grid_sample's padding_mode={self.padding_mode!r} is not one of "
                            f"{', '.join(PADDING_MODES)}", hint="use padding_mode=zeros, border or reflection",
                            field="padding_mode")
        if len(shapes) != 2:
            raise ShapeError(f"grid_sample reads two branches, the input then the grid, but receives {len(shapes)}",
                             hint='name them with from, e.g. {"type": "grid_sample", "from": ["volume", "grid"]}',
                             field="from")
        source, grid = (tuple(s) for s in shapes)
        s = grid[-1] if grid else 0
        if s not in (2, 3):
            raise ShapeError(f"grid_sample's grid {format_shape(grid) or '()'} must end in 2 or 3 coordinates "
                             f"(x, y[, z]) per output point, one per spatial axis, but its last size is {s}",
                             hint="give the grid as (output sizes..., 2) for a 2-D input or (..., 3) for 3-D",
                             field="from")
        lead = len(grid) - 1 - s  # the axes before the output sizes
        if lead < 0 or len(source) != lead + 1 + s:
            raise _ranks_differ(source, grid, s, lead)
        if source[:lead] != grid[:lead]:
            raise ShapeError(f"grid_sample needs the input and the grid to have the same leading (batch) axes, but "
                             f"the input gives {format_shape(source[:lead])} and the grid {format_shape(grid[:lead])}",
                             hint="make the leading axes agree: they are samples, and nothing broadcasts here",
                             field="from")
        spatial, out = source[lead + 1:], grid[lead:-1]
        if self.mode == "bicubic" and s != 2:
            raise ShapeError("grid_sample's mode=bicubic only supports 2-D input (4-D with the batch), but "
                             f"the input {format_shape(source)} has {s} spatial axes",
                             hint="use mode=bilinear or nearest for a 3-D input", field="mode")
        if any(n < 1 for n in spatial):
            raise ShapeError(f"grid_sample needs an input with non-empty spatial axes, but it is "
                             f"{format_shape(source)}", hint="give each spatial size at least 1", field="from")
        return source[:lead], source[lead], spatial, out

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        lead, channels, spatial, out = self.layout(shapes)
        output = (*lead, channels, *out)
        rank = len(spatial)
        taps = TAPS[self.mode] ** rank
        flops = (2 * taps - 1) * volume(output) if taps > 1 else 0
        # one window per axis of the input after its first: leading axes and channels kept, spatial axes whole
        windows = tuple(IDENTITY for _ in range(len(lead))) + tuple(Global(n) for n in spatial)
        mine = len(lead)
        continues = ((*range(mine + 1), *(None,) * rank),  # the input: leading axes and channels continue
                     (*range(mine), *range(mine + 1, mine + 1 + rank), None))  # the grid: its points continue
        summary = (f"{self.mode} {self.padding_mode}" + (" align_corners" if self.align_corners else "")
                   + f", {format_shape(shapes[0])} at {format_shape(out)}")
        return Figures("GridSample", output, 0, 0, flops, windows, (), summary, continues=continues)

    def saved(self, use: Use) -> list | None:
        # grid_sampler_2d/3d's backward reads both the input and the grid, whichever needs a gradient
        return [saves_input(0), saves_input(1)] if any(use.inputs_grad) else []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda source, grid: sample(source, grid, self)

    def explain_costs(self, report, batch: int) -> list[str]:
        if self.mode == "nearest":
            return ["FLOPs: 0 (nearest copies one input value per output element)"]
        per_output = report.flops // max(batch * volume(report.output_shape), 1)
        return [f"FLOPs: {per_output} per output element ({TAPS[self.mode]} taps per spatial axis, weighted and "
                f"summed) = {report.flops:,}"]


def _ranks_differ(source: Shape, grid: Shape, s: int, lead: int) -> ShapeError:
    """The error for an input whose rank does not fit a grid of ``s`` coordinates per point."""
    if lead < 0 and len(source) == 1 + s:
        return ShapeError(f"grid_sample's grid {format_shape(grid)} has {len(grid) - 1} output size(s) before its "
                          f"{s} coordinates, but an input with {s} spatial axes needs {s}",
                          hint=f"give the grid as (output sizes..., {s}), one output size per spatial axis",
                          field="from")
    lead = max(lead, 0)
    have = len(source) - 1 - lead  # the input's spatial axes, after the grid's leading axes
    before = f" after the grid's leading axes {format_shape(grid[:lead])}" if lead else ""
    hint = (f"give the grid {have} coordinates per point for this input" if have in (2, 3) else
            f"give the input channels and 2 or 3 spatial sizes{before}")
    if len(source) - 1 - s > lead:  # or the input has leading axes the grid lacks
        hint += f", or give the grid the input's leading axes {format_shape(source[:len(source) - 1 - s])}"
    return ShapeError(f"grid_sample's grid {format_shape(grid)} holds {s} coordinates per point, for an input of "
                      f"channels and {s} spatial sizes{before}, but the input is {format_shape(source) or '()'}",
                      hint=hint, field="from")

# The NumPy backend's grid_sample, written with the arrays' own operators and methods (the engine imports
# no array library). Every output point's taps are gathered at once, one tap after another, and weighed
# and summed as ATen's CPU kernels do, in the input's precision: the 2-D kernel's vectorized
# unnormalisation ((g + 1) * (size / 2) - 0.5, or (g + 1) * ((size - 1) / 2) with align_corners) and the
# 3-D kernel's scalar one (((g + 1) * size - 1) / 2, (g + 1) / 2 * (size - 1)), so nearest mode rounds the
# same points the same way (half to even). Padding: zeros reads 0 outside; border clips the position;
# reflection reflects it about the edges (the first and last positions' centres with align_corners, their
# outer edges without), then clips it; bicubic pads each of its 16 taps, its weights taken before.

CUBIC_A = -0.75  # ATen's bicubic constant (interpolate's too)


def sample(x, grid, layer: GridSample):
    """``F.grid_sample`` of ``x`` (batch, *lead, C, *spatial) at ``grid`` (batch, *lead, *out, s): the
    output (batch, *lead, C, *out); leading axes are more samples, as PyTorch's merged batch is."""
    lead, channels, spatial, out = layer.layout((x.shape[1:], grid.shape[1:]))
    samples, rank = x.shape[0] * prod(lead), len(spatial)
    points, cells = prod(out), prod(spatial)
    real = x.dtype.type
    # (samples, positions, channels): one gather per tap reads every channel of a position at once
    table = x.reshape(samples, channels, cells).transpose(0, 2, 1).copy()
    coordinates = grid.astype(x.dtype, copy=False).reshape(samples, points, rank)
    axes = [_taps(coordinates[..., rank - 1 - a], n, layer, rank, real)  # the grid gives x (the last axis) first
            for a, n in enumerate(spatial)]
    strides = [prod(spatial[a + 1:]) for a in range(rank)]
    batch = [[n] for n in range(samples)]
    if layer.mode == "bicubic":  # four taps along x, then those four rows along y, as ATen sums them
        result = None
        for row, row_inside, row_weight in axes[0]:
            line = None
            for column, column_inside, column_weight in axes[1]:
                value = _gather(table, batch, row * strides[0] + column, row_inside & column_inside)
                value *= column_weight[..., None]
                line = value if line is None else _add(line, value)
            line *= row_weight[..., None]
            result = line if result is None else _add(result, line)
    else:
        result = None
        for corner in _corners(axes):
            index = sum(tap[0] * stride for tap, stride in zip(corner, strides))
            inside = corner[0][1]
            for tap in corner[1:]:
                inside = inside & tap[1]
            value = _gather(table, batch, index, inside)
            if layer.mode == "bilinear":  # 2-D: y's weight times x's; 3-D: x's times y's times z's
                weights = [tap[2] for tap in (corner if rank == 2 else corner[::-1])]
                weight = weights[0]
                for w in weights[1:]:
                    weight = weight * w
                value *= weight[..., None]
            result = value if result is None else _add(result, value)
    return result.transpose(0, 2, 1).reshape(x.shape[0], *lead, channels, *out).copy()


def prod(sizes) -> int:
    total = 1
    for n in sizes:
        total *= int(n)
    return total


def _add(total, value):
    total += value
    return total


def _corners(axes):
    """Every combination of one tap per axis, the first axis slowest (ATen's corner order)."""
    if not axes:
        return [()]
    return [(tap, *rest) for tap in axes[0] for rest in _corners(axes[1:])]


def _gather(table, batch, index, inside):
    """The values at ``index`` (samples x points), 0 where the tap lies outside the input."""
    value = table[batch, index]
    if not inside.all():
        value[~inside] = 0
    return value


def _unnormalize(g, size: int, align: bool, rank: int, real):
    if rank == 2:  # the vectorized 2-D kernel
        if align:
            return (g + real(1)) * real(real(size - 1) / real(2))
        return (g + real(1)) * real(real(size) / real(2)) - real(0.5)
    if align:  # the scalar 3-D kernel
        return (g + real(1)) / real(2) * real(size - 1)
    return ((g + real(1)) * real(size) - real(1)) / real(2)


def _clip(c, size: int):
    return c.clip(0, size - 1)


def _reflect(c, size: int, align: bool, real):
    """Reflection about the edges, then clipped (ATen's reflect_coordinates and clip_coordinates)."""
    if align and size <= 1:
        zero = c.copy()
        zero[...] = 0
        return zero
    low, twice = (real(0), real(2 * (size - 1))) if align else (real(-0.5), real(2 * size))
    distance = abs(c - low)
    extra = distance - (distance / twice) // 1 * twice  # distance >= 0: floor is trunc
    other = twice - extra
    flipped = other < extra
    extra[flipped] = other[flipped]
    return _clip(extra + low, size)


def _pad(c, size: int, layer: GridSample, real):
    if layer.padding_mode == "border":
        return _clip(c, size)
    if layer.padding_mode == "reflection":
        return _reflect(c, size, layer.align_corners, real)
    return c


def _index(position, size: int, padding: str):
    """An integral position as an index, and whether it lies inside (border and reflection padding
    have brought it in: only the tap past the last position can fall outside)."""
    inside = (position < size) if padding != "zeros" else (position > -1) & (position < size)
    safe = position.copy()
    safe[~inside] = 0  # also far outside, or not a number: no integer overflow
    return safe.astype("int64"), inside


def _taps(g, size: int, layer: GridSample, rank: int, real):
    """One spatial axis's taps: (index, inside, weight) for each input position an output reads."""
    c = _unnormalize(g, size, layer.align_corners, rank, real)
    if layer.mode == "bicubic":
        first = c // 1
        t = c - first
        a = real(CUBIC_A)

        def near(u):  # |u| <= 1
            return ((a + real(2)) * u - (a + real(3))) * u * u + real(1)

        def far(u):  # 1 < |u| < 2
            return ((a * u - real(5) * a) * u + real(8) * a) * u - real(4) * a

        weights = (far(t + real(1)), near(t), near(real(1) - t), far(real(2) - t))
        return [(*_index(_pad(first + real(k - 1), size, layer, real), size, layer.padding_mode), weights[k])
                for k in range(4)]
    c = _pad(c, size, layer, real)
    if layer.mode == "nearest":
        return [(*_index(c.round(), size, layer.padding_mode), None)]
    first = c // 1
    if rank == 2:  # w = x - floor(x), e = 1 - w
        high = c - first
        low = real(1) - high
    else:  # (floor + 1) - x, x - floor
        low = (first + real(1)) - c
        high = c - first
    return [(*_index(first, size, layer.padding_mode), low),
            (*_index(first + real(1), size, layer.padding_mode), high)]
