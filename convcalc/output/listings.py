"""What solve, presets and explain print: their tables and JSON objects, as ``Result``s
(the tables of shape, run and compare are in ``reports.py``)."""

from __future__ import annotations

from ..engine.schema import explain_to_dict, presets_to_dict, receptive_plan_to_dict
from ..engine.units import human, per_axis_text
from .render import Table
from .renderers import Result
from .reports import row_label


def presets_result() -> Result:
    """Every shipped network: its input, parameters, MACs and description."""
    from ..engine.analysis import analyse
    from ..presets import load_preset, preset_description, preset_names

    presets, rows, exact = [], [], []
    for name in preset_names():
        network = load_preset(name)
        totals = analyse(network).totals
        description = preset_description(name)
        presets.append((name, network, totals, description))
        shape = "x".join(map(str, network.input_shape))
        rows.append((name, shape, human(totals.params), human(totals.macs), description))
        exact.append((name, shape, str(totals.params), str(totals.macs), description))
    table = Table(("preset", "input", "params", "MACs", "description"), frozenset({"params", "MACs"}), tuple(rows),
                  None, (), tuple(exact),
                  notes=("figures at each preset's own input size; use: convcalc shape --preset NAME [INPUT]",))
    data = presets_to_dict(presets)
    return Result(table, data, data["presets"])


def explain_result(lines) -> Result:
    """The explanation: its text for the table format, a line a row for the others."""
    text = "\n".join(lines).rstrip()
    data = explain_to_dict(text.split("\n"))
    table = Table(("line",), frozenset(), tuple((line,) for line in data["lines"]), None, ())
    return Result(table, data, [{"line": line} for line in data["lines"]], text=text)


def solve_result(result) -> Result:
    """Each solution's values and the layers they give (no notes when there is none: the
    command says so on stderr)."""
    keys = list(dict.fromkeys(k for s in result.solutions for k in s.values))
    rows = tuple((*[_value_text(s.values.get(k)) for k in keys],
                  " → ".join(row_label(r) for r in s.layers)) for s in result.solutions)
    footer = (f"{len(result.solutions)} solution(s) among {result.searched:,} candidates",) if result.solutions else ()
    data = result.to_dict()
    return Result(Table((*keys, "layers"), frozenset(keys), rows, None, footer), data, data["solutions"])


def input_sizes_result(sizes) -> Result:
    """The input sizes a network accepts (the first 24 in the table) and their pattern."""
    template, low, high = sizes.template, sizes.low, sizes.high
    rows = tuple((str(n), "x".join(str(n if t is None else t) for t in template)) for n in sizes.accepted[:24])
    footer = (f"accepted input sizes in {low}..{high}: {sizes.pattern()}",
              f"smallest: {sizes.smallest}" if sizes.accepted else "no size in the range is accepted")
    data = sizes.to_dict()
    return Result(Table(("size", "input"), frozenset({"size"}), rows, None, footer), data, data["solutions"])


def receptive_plan_result(plan, receptive_field: int) -> Result:
    """The layers repeated until the receptive field is reached, and whether it was."""
    rows = tuple((str(r.index), row_label(r), "x".join(map(str, r.output_shape)),
                  per_axis_text(r.receptive_field.size)) for r in plan.layers)
    size = "x".join(map(str, plan.size))
    verdict = (f"{len(plan.layers)} layers reach a receptive field of {size}" if plan.reached
               else f"the receptive field stops at {size}: the input is too small for more layers")
    table = Table(("#", "layer", "output", "RF"), frozenset({"#", "RF"}), rows, None, (verdict,))
    return Result(table, receptive_plan_to_dict(plan, receptive_field))


def _value_text(value) -> str:
    if value is None:
        return ""
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)
