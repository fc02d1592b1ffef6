"""convcalc presets: the shipped networks."""

from __future__ import annotations

from ..engine.errors import ConvcalcError
from .app import app
from .common import fail, output_format
from .options import Format, Json
from .show import show


@app.command("presets")
def presets_command(
    as_json: Json = False,
    output: Format = None,
) -> None:
    """List the shipped networks, for --preset.

    Example: convcalc presets --format markdown
    """
    try:
        fmt = output_format(as_json, output)
    except ConvcalcError as err:
        fail(err)
    from ..output.listings import presets_result

    show(presets_result(), fmt)
