"""What each command's table holds: the rows, totals and notes of shape, run and compare."""

from __future__ import annotations

from ..engine.analysis import Analysis
from ..engine.layers.base import format_shape
from ..engine.units import human, human_bytes, human_seconds, per_axis_text
from .charts import bar, sparkline
from .render import Table



def row_label(report) -> str:
    """A layer's label in a table: its type and its summary, as they are (no outer space of the input cut)."""
    return report.type + (f" {report.summary}" if report.summary else "")


def row_name(report, depth: int | None = None) -> str:
    """A layer's name in a table: its module path or document name, or its index when it has none;
    under ``depth``, indented two spaces for each block it sits in (as torchinfo shows them).

    >>> from convcalc import analyse_tokens
    >>> row_name(analyse_tokens("3x8x8", "relu").layers[0])
    '1'
    """
    name = report.name if report.name is not None else str(report.index)
    return "  " * min(len(report.path), depth) + name if depth is not None else name


def _layer_cells(analysis: Analysis):
    for r in analysis.layers:
        yield r, row_label(r), format_shape(r.output_shape)


def _footer(analysis: Analysis, optimizer: str = "adam") -> tuple[str, ...]:
    """The lines below a table: the batch's memory, the parameters' split (data, on stdout)."""
    totals, network = analysis.totals, analysis.network
    lines = [f"batch {network.batch}, {network.dtype}: activations {human_bytes(totals.activation_bytes)}, "
             f"parameters {human_bytes(totals.param_bytes)}", *_memory_lines(analysis, optimizer)]
    if totals.trainable_params != totals.params:
        lines.append(f"parameters: {totals.params:,}, of which {totals.trainable_params:,} trainable "
                     f"and {totals.params - totals.trainable_params:,} frozen (requires_grad=False)")
    lines.append(_training_step(analysis))
    return tuple(lines)


def _training_step(analysis: Analysis) -> str:
    """The MACs of a training step: the forward's and the backward's as autograd runs it."""
    from ..engine.training import training_macs

    cost = training_macs(analysis)
    if cost.exact:
        return (f"training step: {human(cost.training_macs)} MACs (forward {human(cost.forward_macs)} + backward "
                f"{human(cost.backward_macs)})")
    listed = ", ".join(map(str, cost.unknown[:8])) + (", ..." if len(cost.unknown) > 8 else "")
    return (f"training step: at least {human(cost.forward_macs + cost.backward_macs)} MACs; the backward of "
            f"layer(s) {listed} is unknown")


def _notes(analysis: Analysis) -> tuple[str, ...]:
    """The notes on a network's figures (for stderr): layers left out of the totals, and each layer's notes."""
    lines = []
    if analysis.totals.uncounted_layers:
        lines.append(f"? {analysis.totals.uncounted_layers} layer(s) convcalc cannot cost: their MACs and FLOPs are "
                     "unknown, and the totals leave them out (+?)")
    for r in analysis.layers:
        lines.extend(f"note (layer {r.index}): {note}" for note in r.notes)
    return tuple(lines)


def _memory_lines(analysis: Analysis, optimizer: str) -> list[str]:
    from ..engine.memory import inference_memory, training_memory

    peak, training = inference_memory(analysis), training_memory(analysis, optimizer)
    unknown = sum(saved is None for saved in training.saved)
    return [
        f"inference: peak activations {human_bytes(peak.peak_bytes)}, at layer {peak.peak_layer}",
        f"training ({optimizer}): {'at least ' if unknown else ''}{human_bytes(training.total_bytes)}: saved "
        f"activations {human_bytes(training.saved_bytes)}, parameters {human_bytes(training.parameter_bytes)},",
        f"  gradients {human_bytes(training.gradient_bytes)}, optimizer state {human_bytes(training.optimizer_bytes)}"
        + (f"; ? {unknown} layer(s) whose saved tensors convcalc does not know are left out" if unknown else ""),
    ]


def shape_table(analysis: Analysis, depth: int | None = None, optimizer: str = "adam", device=None,
                chart: bool = False) -> Table:
    """Per layer: output shape, params, MACs, FLOPs, receptive-field size and jump; with a
    ``device``, each layer's roofline time bound and what limits it.

    With ``depth``, layers inside the same blocks (their first ``depth``
    containers) fold into one row with their subtotals, named by the block;
    0 folds the whole network into one row. ``chart`` adds bars for
    each row's share of the time bound (of the FLOPs, without a device) and of
    the peak memory, and a sparkline of the memory over the run: for terminals.
    """
    from ..engine.memory import inference_memory
    from ..engine.roofline import roofline

    line = roofline(analysis, device)
    bounds = dict(zip((r.index for r in analysis.layers), line.layers))
    memory = inference_memory(analysis)
    live = dict(zip(memory.layers, memory.curve))
    timed = device is not None
    first = ("0", "input", "", format_shape(analysis.network.input_shape), "", "", "", "1", "1") + ("", "") * timed
    rows, exact = [first + ("", "") * chart], [first]
    groups = _groups(analysis.layers, depth)
    shares = _chart_shares(groups, bounds, live, memory.peak_bytes, timed) if chart else None
    for position, group in enumerate(groups):
        last = group[-1]
        rf = last.receptive_field
        if not _folded(last, depth):
            name, label = row_name(last, depth), row_label(last)
            number = str(last.index)
        else:
            # a path holds each block's full name; the block sits inside depth - 1 others
            name = "  " * (depth - 1) + last.path[depth - 1] if depth else "network"
            label = f"{len(group)} layer{'s' * (len(group) != 1)}"
            number = str(last.index) if len(group) == 1 else f"{group[0].index}-{last.index}"
        sums = [sum(r.params for r in group), sum(r.macs for r in group), sum(r.flops for r in group)]
        fields = (per_axis_text(rf.size), per_axis_text(rf.jump))
        unknown = _unknown(group)
        timing = _timing(group, bounds) if timed else ()
        row = (number, name, label, format_shape(last.output_shape), human(sums[0]),
               *(unknown(human(n)) for n in sums[1:]), *fields, *(t[0] for t in timing))
        rows.append(row + (tuple(bar(share, 8) for share in shares[position]) if chart else ()))
        exact.append((number, name, label, format_shape(last.output_shape), str(sums[0]),
                      *(unknown(str(n)) for n in sums[1:]), *fields, *(t[1] for t in timing)))
    totals = analysis.totals
    unknown = _unknown(analysis.layers)  # a total leaving layers out says so, as their rows do
    total = ("", "", "total", format_shape(analysis.output_shape), human(totals.params),
             *(unknown(human(n)) for n in (totals.macs, totals.flops)), "", "")
    exact_total = ("", "", "total", format_shape(analysis.output_shape), str(totals.params),
                   *(unknown(str(n)) for n in (totals.macs, totals.flops)), "", "")
    columns = ("#", "name", "layer", "output", "params", "MACs", "FLOPs", "RF", "jump")
    footer = _footer(analysis, optimizer)
    if timed:
        total += (human_seconds(line.seconds), "")
        exact_total += (repr(line.seconds), "")
        columns += ("bound", "limit")
        footer = _roofline_lines(line) + footer
    if chart:
        total += ("", "")
        columns += ("share", "live")
        footer = (f"share: of the {'time bound' if timed else 'FLOPs'}; live: memory held while the row runs, "
                  "against the peak",
                  f"memory over the run: {sparkline(memory.curve, 40)} (peak {human_bytes(memory.peak_bytes)})") \
            + footer
    return Table(columns, frozenset(columns) - {"name", "layer", "output", "limit", "share", "live"}, tuple(rows),
                 total, footer, tuple(exact), exact_total, optional=("jump", "FLOPs", "limit", "RF", "MACs"),
                 notes=_notes(analysis))


def _timing(group, bounds) -> tuple[tuple[str, str], tuple[str, str]]:
    """A row's (shown, exact) bound and what limits it (most of its time, for several layers)."""
    known = [bounds[r.index] for r in group if bounds[r.index].seconds is not None]
    if len(known) < len(group):
        return ("?", "?"), ("?", "?")
    seconds = sum(b.seconds for b in known)
    memory = sum(b.seconds for b in known if b.limit == "memory")
    limit = "" if not seconds else "memory" if memory * 2 >= seconds else "compute"
    return (human_seconds(seconds), repr(seconds)), (limit, limit)


def _chart_shares(groups, bounds, live, peak, timed) -> list[tuple[float, float]]:
    """Each row's share of the bound time (of the FLOPs without a device) and its live memory over the peak."""
    def weight(r):
        return (bounds[r.index].seconds or 0) if timed else r.flops

    whole = sum(weight(r) for group in groups for r in group) or 1
    return [(sum(weight(r) for r in group) / whole, max(live.get(r.index, 0) for r in group) / (peak or 1))
            for group in groups]


def _roofline_lines(line) -> tuple[str, ...]:
    return (f"roofline on {line.device.name} ({human(line.peak)}FLOP/s, {human(line.device.bandwidth)}B/s): at "
            f"least {human_seconds(line.seconds)},",
            f"  {line.memory_share:.0%} of it memory-bound. A lower bound, not a prediction: it ignores",
            "  kernel efficiency, fusion, launch overhead and caches")


def _unknown(group):
    """How a MACs or FLOPs cell reads when some layers of the row cannot be costed: ? or n+?."""
    if all(r.counted for r in group):
        return lambda text: text
    if not any(r.counted for r in group):
        return lambda text: "?"
    return lambda text: f"{text}+?"


def _folded(report, depth: int | None) -> bool:
    """Whether a layer folds into a row for its block at ``depth``: as torchinfo counts, the
    network is depth 0 and a layer inside N blocks sits at depth N + 1, shown only up to ``depth``;
    a layer nested less deeply stays a row of its own (so a depth past the deepest block folds nothing)."""
    return depth is not None and len(report.path) >= depth


def _groups(reports, depth: int | None):
    """Consecutive reports folding into the same block (its first ``depth`` containers), as lists;
    the others one to a list."""
    groups: list[list] = []
    for report in reports:
        if (groups and _folded(report, depth) and _folded(groups[-1][-1], depth)
                and groups[-1][-1].path[:depth] == report.path[:depth]):
            groups[-1].append(report)
        else:
            groups.append([report])
    return groups


def run_table(execution, optimizer: str = "adam") -> Table:
    """Per layer: output shape, time, achieved GFLOP/s and a summary of the values."""
    rows = []
    for (r, layer, output), run in zip(_layer_cells(execution.analysis), execution.runs):
        rows.append((str(r.index), row_name(r), layer, output, f"{run.seconds * 1e3:.3f}", f"{run.spread:.0%}",
                     "" if run.gflops is None else f"{run.gflops:.1f}",
                     f"{run.mean:.4g}", f"{run.std:.4g}", f"{run.minimum:.4g}", f"{run.maximum:.4g}"))
    analysis = execution.analysis
    total = ("", "", "total", format_shape(analysis.output_shape), f"{execution.seconds * 1e3:.3f}", "",
             f"{2 * analysis.totals.macs / execution.seconds / 1e9:.1f}" if execution.seconds else "", "", "", "", "")
    columns = ("#", "name", "layer", "output", "ms", "±", "GFLOP/s", "mean", "std", "min", "max")
    counts = sorted({run.runs for run in execution.runs})
    how = (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}") + " warm run(s)"
    how += " per layer, chosen automatically" if execution.repeat is None else " per layer"
    footer = (f"seed {execution.seed}; ms: the median of {how} after a warm-up; ±: their spread "
              "(interquartile range / median)",) + _footer(analysis, optimizer) + (
        f"measured while running: peak {human_bytes(execution.peak_bytes)} (the arrays held, each layer's "
        "output and its work buffers)",)
    return Table(columns, frozenset(columns) - {"name", "layer", "output"}, tuple(rows), total, footer,
                 optional=("std", "min", "max", "mean", "±"), notes=_notes(analysis))


def compare_table(comparison, device=None) -> Table:
    """Per variant: its layers, params, MACs, FLOPs, activations and ratios to the standard layer;
    with a roofline ``device``, its time bound and that bound's ratio."""
    from ..verbs.compare import describe_kernels, describe_layers  # here: `shape` needs none of compare at start-up

    timed = any(r.seconds is not None for r in comparison.results)
    standard_seconds = comparison.standard.seconds
    bounds = comparison.bounds(device) if device is not None else None
    rows, notes, exact, short = [], [], [], []
    for number, result in enumerate(comparison.results):
        name = result.variant.name.replace("_", " ")
        if result.analysis is None:
            row = (name, f"not applicable: {result.variant.reason}", "", "", "", "", "", "")
            rows.append(row + (("", "") if bounds else ()) + (("", "") if timed else ()))
            exact.append(rows[-1])
            short.append("not applicable")
            continue
        short.append(describe_kernels(result))
        totals = result.analysis.totals
        closed = "" if result.closed_form is None else f"{float(result.closed_form):.4f}"
        row = (name, describe_layers(result), human(totals.params), human(totals.macs), human(totals.flops),
               human_bytes(totals.activation_bytes), f"{float(result.ratio_macs):.4f}", closed)
        exact_row = (name, describe_layers(result), str(totals.params), str(totals.macs), str(totals.flops),
                     str(totals.activation_bytes), str(float(result.ratio_macs)),
                     "" if result.closed_form is None else str(float(result.closed_form)))
        if bounds:
            seconds, first = bounds[number][0], bounds[0][0]
            row += (human_seconds(seconds), f"{seconds / first:.4f}" if first else "")
            exact_row += (repr(seconds), repr(seconds / first) if first else "")
        if timed:
            ratio = result.seconds / standard_seconds if standard_seconds else None
            timing = (f"{result.seconds * 1e3:.3f}", "" if ratio is None else f"{ratio:.2f}")
            row, exact_row = row + timing, exact_row + timing
        rows.append(row)
        exact.append(exact_row)
        notes.extend(f"note ({name}): {note}" for note in result.variant.notes)
    columns = ("variant", "layers", "params", "MACs", "FLOPs", "activations", "MACs ratio", "1/C_out + 1/K")
    if bounds:
        columns += ("bound", "bound ratio")
        notes.append(f"bound: the roofline time on {device.name}, at least what the variant takes; its ratio "
                      "to the standard layer's predicts the speed-up better than the MACs ratio (a memory-bound "
                      "variant gains less)")
    if timed:
        columns += ("ms", "time ratio")
    from ..engine.analysis import input_hints

    biased = comparison.layer.bias
    first = [("every convolution of a variant has a bias, as the given layer does" if biased else
              "no convolution of a variant has a bias, as the given layer has none")]
    if timed:
        first.append("times: NumPy backend, all layers of a variant; fewer MACs need not mean less time "
                     "(depthwise layers are memory-bound)")
    notes = [*(f"note: {hint}" for hint in input_hints(tuple(comparison.input_shape))), *first, *notes]
    return Table(columns, frozenset(columns) - {"variant", "layers"}, tuple(rows), None, (), tuple(exact),
                 optional=("activations", "1/C_out + 1/K", "FLOPs"), notes=tuple(notes), short={"layers": tuple(short)})
