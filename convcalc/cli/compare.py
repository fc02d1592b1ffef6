"""convcalc compare: a convolution against its cheaper variants."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import device_from, fail, output_format, wants_json
from .options import Bandwidth, Batch, Device, Dtype, Format, Input, Json, Peak, Tf32Matmul
from .show import show
from .source import NetworkSource
from .values import positive_option

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
    input_shape: Input = None,
    layer: Annotated[Optional[str], typer.Argument(
        metavar="LAYER", help="A convolution token, e.g. conv:64,k=3,p=1.", show_default=False)] = None,
    out: Annotated[Optional[int], typer.Option(
        "--out", metavar="N", help="out_channels, when no LAYER token is given.")] = None,
    kernel_size: Annotated[Optional[str], typer.Option(
        "-k", "--kernel-size", metavar="SIZE", help="Kernel size, e.g. 3 or 3x5.")] = None,
    stride: Annotated[Optional[str], typer.Option(
        "-s", "--stride", metavar="SIZE", help="Stride (default: 1).")] = None,
    padding: Annotated[Optional[str], typer.Option(
        "-p", "--padding", metavar="PADDING", help="Padding: int, per-axis, same or valid.")] = None,
    dilation: Annotated[Optional[str], typer.Option(
        "-d", "--dilation", metavar="SIZE", help="Dilation (default: 1).")] = None,
    bias: Annotated[Optional[bool], typer.Option(
        "--bias/--no-bias", help="Bias in every convolution (default: bias).", show_default=False)] = None,
    groups: Annotated[Optional[int], typer.Option(
        "--groups", "-g", metavar="N", help="Groups of the grouped and ShuffleNet variants (default: the largest "
                                            "below in_channels dividing both channel counts).")] = None,
    run: Annotated[bool, typer.Option("--run", help="Also time every variant with the NumPy backend.")] = False,
    batch: Batch = None,
    repeat: Annotated[Optional[int], typer.Option(
        "--repeat", metavar="N", help="With --run: warm runs per layer (default: automatic), at most "
                                      "10,000; a layer stops after 10 s of them. The median counts.")] = None,
    dtype: Dtype = None,
    device: Device = None,
    peak: Peak = None,
    bandwidth: Bandwidth = None,
    tf32_matmul: Tf32Matmul = False,
    as_json: Json = False,
    output: Format = None,
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
        source = NetworkSource(input_shape, (layer,) if layer is not None else (), batch=batch, dtype=dtype)
        network = source.network()
        spec = network.layers[0] if network.layers else _conv_from_options(options)
        positive_option(groups, "--groups", 4)
        positive_option(repeat, "--repeat", 5)
        comparison = compare(network.input_shape, spec, groups=groups, batch=network.batch, dtype=network.dtype)
        target = device_from(device, peak, bandwidth, tf32_matmul)
        if run:
            from ..backend.memory import set_memory_limit

            set_memory_limit(None)
            comparison = time_variants(comparison, repeat=repeat)
        data = comparison.to_dict(target)
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output))
    from ..output.renderers import Result
    from ..output.reports import compare_table

    show(Result(compare_table(comparison, target), data, data["variants"]), fmt)
