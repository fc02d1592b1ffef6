"""convcalc presets: the shipped networks."""

from __future__ import annotations

from typing import Optional

from ..engine.errors import ConvcalcError
from ..output.formats import OutputFormat
from .app import app
from .common import fail, output_format
from .options import FORMAT, JSON
from .show import show


@app.command("presets")
def presets_command(
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """List the shipped networks, for --preset.

    Example: convcalc presets --format markdown
    """
    try:
        fmt = output_format(as_json, output)
    except ConvcalcError as err:
        fail(err, None)
    from ..engine.analysis import analyse
    from ..engine.units import human
    from ..output.render import Table
    from ..presets import load_preset, preset_description, preset_names

    rows, exact, data = [], [], []
    for name in preset_names():
        network = load_preset(name)
        totals = analyse(network).totals
        rows.append((name, "x".join(map(str, network.input_shape)), human(totals.params), human(totals.macs),
                     preset_description(name)))
        exact.append((*rows[-1][:2], str(totals.params), str(totals.macs), rows[-1][4]))
        data.append({"name": name, "input_shape": list(network.input_shape), "params": totals.params,
                     "macs": totals.macs, "description": preset_description(name)})
    columns = ("preset", "input", "params", "MACs", "description")
    table = Table(columns, frozenset({"params", "MACs"}), tuple(rows), None,
                  ("figures at each preset's own input size; use: convcalc shape --preset NAME [INPUT]",),
                  tuple(exact))
    show(table, {"schema": "convcalc.presets/1", "presets": data}, fmt, data)
