"""The arithmetic, shown: each layer's formulas with the numbers substituted, and
small diagrams drawn with plain characters.

Legend of the drawings: ``o`` an input element, ``.`` padding, ``#`` what the
chosen output reads (or, for a stack, its receptive field).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from itertools import product
from math import prod

from ..engine.analysis import analyse
from ..engine.errors import SpecError
from ..engine.layers import AvgPool, Conv, ConvTranspose, MaxPool
from ..engine.layers.base import format_shape, per_axis
from ..engine.network import Analysis
from ..engine.units import fraction_text, per_axis_text

DRAW_LIMIT = 39  # largest padded size drawn per axis: "  " + 39 cells and spaces fit 80 columns


def _field_line(before, after) -> str:
    """The receptive field in words: how many input positions an output reads, how far apart neighbouring
    outputs' fields lie, and which input positions output 0 reads, fractions as fractions of an input
    position.

    >>> from convcalc import analyse_tokens
    >>> before, after = (r.receptive_field for r in analyse_tokens("1x9", "relu", "conv:1,k=4,p=1").layers)
    >>> print(_field_line(before, after))
    receptive field: each output reads 4 input positions (was 1), neighbouring outputs' fields 1 input position
      apart (was 1 input position); output 0 reads input positions -1 to 2, centred on 1/2 (halfway between 0 and 1)
    """
    def apart(jumps) -> str:
        if any(j is None for j in jumps):
            return "the whole input (every output reads all of it)"
        text = per_axis_text(jumps)
        return f"{text} of an input position" if all(j < 1 for j in jumps) else \
            f"{text} input position{'' if text == '1' else 's'}"

    line = (f"receptive field: each output reads {per_axis_text(after.size)} input positions (was "
            f"{per_axis_text(before.size)}), neighbouring outputs' fields {apart(after.jump)} apart (was "
            f"{apart(before.jump)})")
    if any(after.varies):
        line += "; the largest field (fields differ between output positions)"
    elif all(j is not None for j in after.jump) and all(after.size):
        spans = [_span(size, centre) for size, centre in zip(after.size, after.centre)]
        where = (f"{spans[0][0]}{spans[0][1]}" if len(spans) == 1 else
                 f"{spans[0][0]} on every axis{spans[0][1]}" if len(set(spans)) == 1 else
                 ", ".join(f"{span} on axis {axis}{centre}" for axis, (span, centre) in enumerate(spans)))
        line += f"; output 0 reads input positions {where}"
    return "\n  ".join(_wrap(line))


def _span(size: int, centre) -> tuple[str, str]:
    """Input positions ``first`` to ``last`` of a field, and its centre when it is between two positions."""
    first, last = centre - Fraction(size - 1, 2), centre + Fraction(size - 1, 2)
    if centre.denominator == 1:
        return f"{fraction_text(first)} to {fraction_text(last)}", ""
    low = centre.numerator // centre.denominator
    between = f" (halfway between {low} and {low + 1})" if centre - low == Fraction(1, 2) else ""
    return f"{fraction_text(first)} to {fraction_text(last)}", f", centred on {fraction_text(centre)}{between}"


def _wrap(line: str) -> list[str]:
    import textwrap

    return textwrap.wrap(line, 110, break_on_hyphens=False) or [line]


def _position(at, rank: int) -> tuple[int, ...]:
    """The output position asked for with --at, padded with zeros to the rank."""
    at = tuple(at or ())[:rank]
    return at + (0,) * (rank - len(at))


def check_position(at, output_shape) -> None:
    """Refuse an --at position outside the output (drawing it would show an empty window)."""
    if at is None:
        return
    sizes = output_shape[1:]
    if len(at) > len(sizes):
        raise SpecError(f"--at has {len(at)} values but the output has {len(sizes)} spatial axes",
                        hint=f"give at most {len(sizes)}, e.g. --at {','.join(['0'] * len(sizes))}", field="at")
    for axis, (value, size) in enumerate(zip(at, sizes)):
        if value >= size:
            raise SpecError(f"--at {','.join(map(str, at))} is outside the output: axis {axis} has {size} positions "
                            f"(0 to {size - 1})", hint=f"use a position below {size} on that axis", field="at")


def _window_drawing(layer, shape, at) -> list[str]:
    """The padded input with the taps of one output marked."""
    if not isinstance(layer, (Conv, MaxPool, AvgPool)) or len(shape) - 1 not in (1, 2):
        return []
    rank = len(shape) - 1
    kernel = per_axis(layer.kernel_size, rank, "kernel_size")
    dilation = per_axis(getattr(layer, "dilation", 1), rank, "dilation")
    stride = kernel if isinstance(layer, (MaxPool, AvgPool)) and layer.stride in (None, ()) else per_axis(
        layer.stride, rank, "stride")
    pads = layer.pads(shape[1:]) if isinstance(layer, Conv) else [(p, p) for p in per_axis(layer.padding, rank, "padding")]
    padded = [n + b + e for n, (b, e) in zip(shape[1:], pads)]
    if any(p > DRAW_LIMIT for p in padded):
        return []
    at = _position(at, rank)
    taps = {tuple(a * s + t * d for a, s, t, d in zip(at, stride, tap, dilation))
            for tap in product(*(range(k) for k in kernel))}
    rows = padded[0] if rank == 2 else 1
    cols = padded[-1]
    lines = [f"window of output {','.join(map(str, at))} ({'x'.join(map(str, kernel))} taps"
             + (f", dilation {'x'.join(map(str, dilation))}" if any(d > 1 for d in dilation) else "") + "):"]
    for r in range(rows):
        cells = []
        for c in range(cols):
            position = (r, c) if rank == 2 else (c,)
            inside = all(b <= p < b + n for p, (b, _), n in zip(position, pads, shape[1:]))
            cells.append("#" if position in taps else ("o" if inside else "."))
        lines.append("  " + " ".join(cells))
    return lines


def overlap_counts(layer: ConvTranspose, sizes) -> list:
    """How many (input, tap) products each output of a transposed convolution sums,
    padding cropped, as nested lists (one level per axis)."""
    import numpy as np

    rank = len(sizes)
    kernel, stride, padding, dilation = (per_axis(getattr(layer, n), rank, n)
                                         for n in ("kernel_size", "stride", "padding", "dilation"))
    op = layer.resolved_output_padding(sizes)
    full = [(n - 1) * s + d * (k - 1) + 1 + q for n, s, d, k, q in zip(sizes, stride, dilation, kernel, op)]
    counts = np.zeros(full, dtype=np.int64)
    for tap in product(*(range(k) for k in kernel)):
        index = tuple(slice(t * d, t * d + (n - 1) * s + 1, s) for t, d, n, s in zip(tap, dilation, sizes, stride))
        counts[index] += 1
    crop = tuple(slice(p, f - p) for p, f in zip(padding, full))
    return counts[crop].tolist()


def landing(layer: ConvTranspose, sizes, position) -> set:
    """The output positions (padding cropped) that input ``position`` of a transposed
    convolution writes: input i reaches output i*s - p + t*d for every tap t."""
    rank = len(sizes)
    kernel, stride, padding, dilation = (per_axis(getattr(layer, n), rank, n)
                                         for n in ("kernel_size", "stride", "padding", "dilation"))
    out = layer.infer((layer.in_channels or 1, *sizes)).output_shape[1:]
    reached = {tuple(i * s - p + t * d for i, s, p, t, d in zip(position, stride, padding, tap, dilation))
               for tap in product(*(range(k) for k in kernel))}
    return {q for q in reached if all(0 <= v < n for v, n in zip(q, out))}


def _overlap_drawing(layer, shape, at=None) -> list[str]:
    if not isinstance(layer, ConvTranspose) or len(shape) - 1 not in (1, 2):
        return []
    out = layer.infer(shape).output_shape[1:]
    kernel = per_axis(layer.kernel_size, len(shape) - 1, "kernel_size")
    if any(n > DRAW_LIMIT for n in out) or prod(kernel) > DRAW_LIMIT ** 2:
        return []  # checked before anything is built: the drawing's size is bounded, not the input's
    counts = overlap_counts(layer, shape[1:])
    rows = counts if len(shape) == 3 else [counts]
    if len(rows) > DRAW_LIMIT or len(rows[0]) > DRAW_LIMIT:
        return []
    position = _position(at, len(shape) - 1)
    marks = landing(layer, shape[1:], position)
    lines = [f"input {','.join(map(str, position))} lands on (#), in the output:"]
    for r, row in enumerate(rows):
        lines.append("  " + " ".join("#" if ((r, c) if len(shape) == 3 else (c,)) in marks else "o"
                                     for c in range(len(row))))
    lines.append("overlap: how many input x kernel products each output sums")
    lines += ["  " + " ".join(str(v) for v in row) for row in rows]
    # Borders always sum fewer products; the checkerboard is an uneven interior,
    # away from the first and last d(k-1) positions of every axis.
    import numpy as np

    rank = len(shape) - 1
    grid = np.array(counts)
    kernel, stride, dilation, padding = (per_axis(getattr(layer, n), rank, n)
                                         for n in ("kernel_size", "stride", "dilation", "padding"))
    inner = tuple(slice(max(d * (k - 1) - p, 0), max(n - max(d * (k - 1) - p, 0), 0))
                  for k, d, p, n in zip(kernel, dilation, padding, grid.shape))
    interior = grid[inner]
    values = set(interior.ravel().tolist()) if interior.size else set()
    if len(values) > 1:
        lines.append(f"warning: uneven overlap inside ({min(values)} to {max(values)} products): kernel "
                     f"{'x'.join(map(str, kernel))} with stride {'x'.join(map(str, stride))}"
                     + (f" and dilation {'x'.join(map(str, dilation))}" if any(d > 1 for d in dilation) else "")
                     + " makes the checkerboard artifact of transposed convolutions")
    return lines


def _modes_1d(layer, shape) -> list[str]:
    if not isinstance(layer, Conv) or len(shape) != 2 or per_axis(layer.stride, 1, "stride") != (1,):
        return []
    (k,), (d,) = per_axis(layer.kernel_size, 1, "k"), per_axis(layer.dilation, 1, "d")
    n, reach = shape[1], d * (k - 1)
    return ["1-D padding modes, stride 1:",
            f"  full : pad {reach} each side (convcalc's p=full) -> {n} + {reach} = {n + reach}",
            f"  same : pad {reach} in all (p=same)           -> {n}",
            f"  valid: no padding (p=valid)                -> {n} - {reach} = {n - reach}"]


def _field_drawing(analysis: Analysis, at) -> list[str]:
    """The receptive field of one output of the last layer, drawn over the input."""
    network = analysis.network
    shape = network.input_shape
    rank = len(shape) - 1
    if rank not in (1, 2) or any(n > DRAW_LIMIT for n in shape[1:]) or len(analysis.layers) < 2:
        return []
    out = analysis.output_shape
    if len(out) - 1 != rank or analysis.graph is None:
        return []
    at = _position(at, rank)
    last = analysis.layers[-1].index  # the analysis's own fields: through every move, branch and window
    bounds = [analysis.field_of(last, a, axis) for axis, a in enumerate(at)]
    if any(b is None for b in bounds):
        return []
    lines = [f"receptive field of output {','.join(map(str, at))} of the last layer, over the input "
             f"({' x '.join(f'{lo}..{hi}' for lo, hi in bounds)}):"]
    rows = shape[1] if rank == 2 else 1
    for r in range(rows):
        cells = []
        for c in range(shape[-1]):
            position = (r, c) if rank == 2 else (c,)
            inside = all(lo <= p <= hi for p, (lo, hi) in zip(position, bounds))
            cells.append("#" if inside else "o")
        lines.append("  " + " ".join(cells))
    return lines


def explain(network, *, at=None) -> list[str]:
    """The working of every layer, as lines of plain text.

    >>> from convcalc import Network, parse_layer
    >>> lines = explain(Network((3, 224, 224), (parse_layer("conv:64,k=7,s=2,p=3"),)))
    >>> lines[1], lines[3]
    ('H: floor((224 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 112', 'params: 64 x 3 x 7 x 7 + 64 = 9,472')
    """
    analysis = analyse(network)
    if analysis.layers:
        check_position(at, analysis.layers[0].output_shape)
    lines = []
    previous = None
    for layer, report in zip(network.layers, analysis.layers):
        shape = report.input_shape
        lines.append(f"layer {report.index}: {report.type} {report.summary}".rstrip()
                     + f"  {format_shape(shape)} -> {format_shape(report.output_shape)}")
        start = previous if previous is not None else _input_field(len(shape) - 1)
        if layer.slices == 1:
            body = layer.explain_sizes(shape, report.output_shape) + layer.explain_costs(report, network.batch)
            body.append(_field_line(start, report.receptive_field))
            body += _window_drawing(layer, shape, at) + _overlap_drawing(layer, shape, at) + _modes_1d(layer, shape)
        else:  # one slice's arithmetic, the slices counted as samples (as PyTorch runs it)
            one = replace(report, input_shape=shape[1:], output_shape=report.output_shape[1:])
            body = (layer.explain_sizes(shape[1:], report.output_shape[1:])
                    + layer.explain_costs(one, network.batch * layer.slices))
            body.append(_field_line(start, report.receptive_field))
        body += [f"note: {note}" for note in report.notes]
        lines += body
        lines.append("")
        previous = report.receptive_field
    lines += _field_drawing(analysis, at)
    return [line.rstrip() for line in lines]


def _input_field(rank: int):
    from fractions import Fraction

    from ..engine.receptive import ReceptiveField

    return ReceptiveField((1,) * rank, (Fraction(1),) * rank, (Fraction(0),) * rank, (False,) * rank)


MATRIX_LIMIT = 64


def convolution_matrix(layer: Conv, sizes) -> list[list[int]]:
    """The convolution as a matrix: row per output, column per input, the
    entry the number (1, 2, ...) of the kernel tap that joins them, 0 where none does.

    With the kernel's taps as its weights, ``matrix @ x`` is the convolution, and
    ``matrix.T @ y`` the transposed convolution with the same kernel, stride and padding.

    >>> convolution_matrix(Conv(1, 2, bias=False), (3,))
    [[1, 2, 0], [0, 1, 2]]
    """
    rank = len(sizes)
    kernel, stride, dilation = (per_axis(getattr(layer, n), rank, n) for n in ("kernel_size", "stride", "dilation"))
    pads = layer.pads(tuple(sizes))
    out = layer.infer((1, *sizes)).output_shape[1:]
    taps = list(product(*(range(k) for k in kernel)))
    matrix = []
    for position in product(*(range(o) for o in out)):
        row = [0] * prod(sizes)
        for number, tap in enumerate(taps, start=1):
            source = [p * s - b + t * d for p, s, (b, _), t, d in zip(position, stride, pads, tap, dilation)]
            if all(0 <= q < n for q, n in zip(source, sizes)):
                flat = 0
                for q, n in zip(source, sizes):
                    flat = flat * n + q
                row[flat] = number
        matrix.append(row)
    return matrix


def matrix_lines(layer, shape) -> list[str]:
    """The matrix and its transpose, drawn; or why it is not drawn."""
    from ..engine.errors import SpecError

    if not isinstance(layer, Conv) or shape[0] != 1 or layer.out_channels != 1 or layer.padding_mode != "zeros":
        raise SpecError("--matrix draws a single-channel convolution with zero padding",
                        hint="e.g. convcalc explain 1x4x4 conv:1,k=3 --matrix", field="matrix")
    rows, columns = prod(layer.infer(shape).output_shape[1:]), prod(shape[1:])
    if rows > MATRIX_LIMIT or columns > MATRIX_LIMIT:  # refused before the matrix is built
        raise SpecError(f"the matrix would be {rows:,} x {columns:,}; --matrix draws up to "
                        f"{MATRIX_LIMIT} x {MATRIX_LIMIT}", hint="use a smaller input, e.g. 1x4x4", field="matrix")
    matrix = convolution_matrix(layer, shape[1:])
    width = max(len(str(v)) for row in matrix for v in row)
    draw = lambda rows: ["  " + " ".join(str(v).rjust(width) if v else ".".rjust(width) for v in row)  # noqa: E731
                         for row in rows]
    lines = [f"convolution matrix: {len(matrix)} outputs x {len(matrix[0])} inputs (flattened in order); "
             f"entry = kernel tap number, . = 0"]
    lines += draw(matrix)
    lines.append(f"its transpose ({len(matrix[0])} x {len(matrix)}) is the transposed convolution with the same "
                 "kernel, stride and padding:")
    lines += draw([list(column) for column in zip(*matrix)])
    return lines
