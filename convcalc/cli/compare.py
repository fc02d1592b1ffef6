"""convcalc compare: a convolution against its cheaper variants."""

from __future__ import annotations

from typing import Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import app
from .common import device_from, fail, network_from, output_format
from .options import BANDWIDTH, BATCH, DEVICE, FORMAT, INPUT, JSON, PEAK
from .show import show

COMPARE_EXAMPLES = """
Examples:

  convcalc compare 32x56x56 conv:64,k=3,p=1

  convcalc compare 32x56x56 --out 64 -k 3 -p 1 --no-bias --groups 4

  convcalc compare 144x56x56 conv:144,k=3,p=1 --run --batch 8 --json

  # the least time each variant can take on a T4: the speed-up to expect
  convcalc compare 144x56x56 conv:144,k=3,p=1 --device t4
"""


_CONV_OPTIONS = {"out_channels": "--out", "kernel_size": "-k", "stride": "-s", "padding": "-p", "dilation": "-d",
                 "bias": "--bias"}


def _conv_from_options(values: dict):
    from ..engine.errors import Origin
    from ..readers.build import build_layer, lookup_kind
    from ..readers.values import read_text_value

    given = {name: value for name, value in values.items() if value is not None}
    if "out_channels" not in given or "kernel_size" not in given:
        raise SpecError("compare needs a layer: a conv token, or --out and -k",
                        hint="e.g. convcalc compare 32x56x56 conv:64,k=3,p=1", field="layer")
    arguments = {name: read_text_value(value) if isinstance(value, str) else value for name, value in given.items()}
    text = " ".join(f"{_CONV_OPTIONS[name]} {value}" if name != "bias" else ("--bias" if value else "--no-bias")
                    for name, value in given.items())
    spans, offset = [], 0
    for name, value in given.items():
        piece = f"{_CONV_OPTIONS[name]} {value}" if name != "bias" else ("--bias" if value else "--no-bias")
        spans.append((name, (offset, offset + len(piece))))
        offset += len(piece) + 1
    return build_layer(lookup_kind("conv"), arguments, Origin(text, (("*", (0, len(text))), *spans), where="options"))


@app.command("compare", epilog=COMPARE_EXAMPLES)
def compare_command(
    input_shape: Optional[str] = INPUT,
    layer: Optional[str] = typer.Argument(None, metavar="LAYER", help="A convolution token, e.g. conv:64,k=3,p=1."),
    out: Optional[int] = typer.Option(None, "--out", help="out_channels, when no LAYER token is given."),
    kernel_size: Optional[str] = typer.Option(None, "-k", "--kernel-size", help="Kernel size, e.g. 3 or 3x5."),
    stride: Optional[str] = typer.Option(None, "-s", "--stride", help="Stride (default: 1)."),
    padding: Optional[str] = typer.Option(None, "-p", "--padding", help="Padding: int, per-axis, same or valid."),
    dilation: Optional[str] = typer.Option(None, "-d", "--dilation", help="Dilation (default: 1)."),
    bias: Optional[bool] = typer.Option(None, "--bias/--no-bias", help="Bias in every convolution (default: bias)."),
    groups: Optional[int] = typer.Option(None, "--groups", "-g",
                                         help="Groups of the grouped and ShuffleNet variants (default: the largest "
                                              "below in_channels dividing both channel counts)."),
    run: bool = typer.Option(False, "--run", help="Also time every variant with the NumPy backend."),
    batch: Optional[int] = BATCH,
    repeat: Optional[int] = typer.Option(None, "--repeat", help="With --run: warm runs per layer (default: "
                                                                "automatic); the median counts."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 (default) or float64 with --run."),
    device: Optional[str] = DEVICE,
    peak: Optional[str] = PEAK,
    bandwidth: Optional[str] = BANDWIDTH,
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """A convolution against its depthwise-separable, grouped, spatially separable, flattened and ShuffleNet variants."""
    from ..verbs.compare import compare, time_variants

    try:
        fmt = output_format(as_json, output)
        options = {"out_channels": out, "kernel_size": kernel_size, "stride": stride, "padding": padding,
                   "dilation": dilation, "bias": bias}
        if layer is not None and any(v is not None for v in options.values()):
            raise SpecError("give the layer as a token or as options (--out, -k, ...), not both",
                            hint="e.g. convcalc compare 32x56x56 conv:64,k=3,p=1", field="layer")
        if input_shape is None:
            raise SpecError("missing the input shape", hint="e.g. convcalc compare 32x56x56 conv:64,k=3,p=1",
                            field="input")
        network = network_from(input_shape, [layer] if layer is not None else [], None, batch, dtype)
        spec = network.layers[0] if network.layers else _conv_from_options(options)
        if groups is not None and groups < 1:
            raise SpecError(f"--groups must be a positive integer (got {groups})", hint="e.g. --groups 4",
                            field="groups")
        comparison = compare(network.input_shape, spec, groups=groups, batch=network.batch, dtype=network.dtype)
        target = device_from(device, peak, bandwidth)
        if run:
            from ..backend.memory import set_memory_limit

            set_memory_limit(None)
            comparison = time_variants(comparison, repeat=repeat)
        data = comparison.to_dict(target)
    except ConvcalcError as err:
        fail(err, OutputFormat.json if as_json else output)
    from ..output.reports import compare_table

    show(compare_table(comparison, target), data, fmt, data["variants"])
