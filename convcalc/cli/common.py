"""What every command does alike: pick the output format, describe the roofline device, report errors.

The network a command is given is read by ``cli/source.py``; option values by ``cli/values.py``.
"""

from __future__ import annotations

import json
import sys

import typer

from ..engine.dtypes import DTYPE_BYTES
from ..engine.errors import ConsistencyError, ConvcalcError, ResourceError, SpecError
from ..engine.escape import escape
from ..output.formats import OutputFormat
from .app import ExitCode


def wants_json(as_json: bool | None, output) -> bool:
    """Whether the error object goes to stdout too: --json, or --format json or ndjson."""
    return bool(as_json) or output in (OutputFormat.json, OutputFormat.ndjson)


def fail(err: ConvcalcError, as_json: bool = False, notes=()) -> None:
    """Report ``err`` (on stderr, with ``notes`` after it; on stdout too as the error object, when JSON
    was asked for) and exit: 1 for a refusal, 2 for bad usage."""
    from ..engine.schema import error_object

    print(err.format(), file=sys.stderr)
    print_notes(notes)
    if as_json:
        print(json.dumps(error_object(err.to_dict())))
    refused = isinstance(err, (ResourceError, ConsistencyError))
    raise typer.Exit(int(ExitCode.REFUSED if refused else ExitCode.USAGE))


def print_notes(notes) -> None:
    """Notes for a person, on stderr, one a line."""
    for note in notes:
        print(f"note: {escape(note)}", file=sys.stderr)


def input_notes(source=None, network=None, shape=None) -> tuple[str, ...]:
    """What the input shape may mean instead (it looks batch-included or channels-last): the network's
    input, else the one given on the command line (``source``) or ``shape``; none when there is none."""
    from ..engine.analysis import input_hints

    if network is not None:
        shape = network.input_shape
    elif shape is None and source is not None and source.input_shape is not None:
        from ..readers import parse_shape

        try:
            shape = parse_shape(source.input_shape)
        except ConvcalcError:
            return ()
    return input_hints(tuple(shape)) if shape is not None and None not in shape else ()


def output_format(as_json: bool, output: OutputFormat | None) -> OutputFormat:
    """The format asked for: --format, or --json, or the table."""
    if as_json and output not in (None, OutputFormat.json):
        raise SpecError(f"--json and --format {output.value} ask for two formats", hint="give one of them",
                        field="format")
    return OutputFormat.json if as_json else (output or OutputFormat.table)


def device_from(name: str | None, peak: str | None, bandwidth: str | None, tf32_matmul: bool = False):
    """The roofline device the options describe, or None when none is given."""
    if name is None and peak is None and bandwidth is None:
        if tf32_matmul:
            raise SpecError("--tf32-matmul says how a device runs float32 products, but no device is given",
                            hint="add --device, e.g. --device a100-80gb --tf32-matmul", field="tf32_matmul")
        return None
    from ..engine.devices import Device
    from ..engine.roofline import find_device
    from .values import rate_option

    if name is not None and name.lower() == "measure":
        from ..backend.machine import measure_machine

        base = measure_machine()[0]
    elif name is not None:
        base = find_device(name)
    elif peak is None or bandwidth is None:
        raise SpecError("without --device, give both --peak and --bandwidth", hint="e.g. --peak 19.5T --bandwidth "
                        "2TB/s, or --device a100-80gb", field="device")
    else:
        base = None
    peaks = dict(base.peak) if base is not None else {}
    if peak is not None:
        value = rate_option(peak, "--peak", "FLOP", "19.5T (FLOP/s)")
        peaks = dict.fromkeys(DTYPE_BYTES, value)  # the user's figure, for whatever dtype is analysed
    rate = base.bandwidth if base is not None else None
    if bandwidth is not None:
        rate = rate_option(bandwidth, "--bandwidth", "B", "900GB/s")
    label = base.name if base is not None else "the given device"
    if base is not None and (peak is not None or bandwidth is not None):
        label += " (with the given " + " and ".join(
            word for word, given in (("peak", peak), ("bandwidth", bandwidth)) if given is not None) + ")"
    cites = dict(base.cites) if base is not None and peak is None and bandwidth is None else {}
    return Device(label, peaks, rate, base.source if base is not None else "given on the command line", cites,
                  tf32_matmul)
