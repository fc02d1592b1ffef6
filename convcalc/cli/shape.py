"""convcalc shape: every layer's figures, for one network or a stream of documents, one a line."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import ExitCode, app
from .common import device_from, fail, output_format, wants_json
from .options import Bandwidth, Device, Format, Json, Optimizer, Peak
from .show import show
from .source import NetworkSource, reads_network

SHAPE_EXAMPLES = """
Examples:

  convcalc shape 3x224x224 conv:64,k=7,s=2,p=3 bn relu maxpool:k=3,s=2,p=1

  convcalc shape 64x16000 conv:64,k=3,p=same --json

  convcalc shape 3x224x224 "Conv2d(3, 64, kernel_size=7, stride=2)"

  # a document: JSON, YAML, print(model) text or ONNX; - reads stdin
  convcalc shape -f net.yaml

  # one document per line in, one result per line out
  convcalc shape --stream sweep.ndjson

  # a shipped network on another input
  convcalc shape --preset resnet50 3x320x320

  # the least time each layer can take on an A100, and the memory over the run
  convcalc shape --preset mobilenet_v2 --device a100-80gb --chart

  # a PyTorch model (needs torch), folded by its top-level modules
  convcalc shape --model torchvision.models:resnet18 3x224x224 --depth 1
"""


def _lines(handle, limit: int):
    """(number, bytes or None) for each line, reading at most ``limit`` bytes of any line into memory:
    a longer line is read to its end and given as None."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the over-long line
                line = handle.readline(1 << 20)
            yield number, None
            continue
        yield number, line


def _stream(path: str, batch, dtype) -> int:
    """One document a line in, one result a line out; a bad line gives an error object with its line
    number, and the lines after it still come through."""
    from ..engine.analysis import analyse
    from ..engine.network import Network
    from ..engine.limits import max_document_bytes
    from ..engine.schema import error_object, internal_error_object
    from ..readers import load_document

    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    failed = False
    limit = max_document_bytes()
    try:
        for number, raw in _lines(handle, limit):
            try:
                if raw is None:
                    raise SpecError(f"the line is longer than the limit of {limit:,} bytes",
                                    hint="raise it with CONVCALC_MAX_DOCUMENT_BYTES", field="document")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise SpecError(f"the line is not UTF-8 (byte {err.start + 1} is 0x{raw[err.start]:02x})",
                                    hint="write documents as UTF-8 text", field="document") from None
                if not line.strip():
                    continue
                network = load_document(line)
                network = Network(network.input_shape, network.layers, batch or network.batch, dtype or network.dtype)
                result = analyse(network).to_dict()
            except ConvcalcError as err:
                failed = True
                result = error_object(err.to_dict(), number)
            except Exception as err:  # noqa: BLE001 - one line's failure must not lose the others (a bug if seen)
                failed = True
                result = internal_error_object(err, number)
            print(json.dumps(result), flush=True)
    finally:
        if path != "-":
            handle.close()
    return int(ExitCode.REFUSED if failed else ExitCode.OK)


@app.command(epilog=SHAPE_EXAMPLES)
@reads_network
def shape(
    source: NetworkSource,
    stream: Annotated[Optional[str], typer.Option(
        "--stream", metavar="FILE",
        help="Read one JSON document per line (- for stdin), print one JSON result per line.")] = None,
    depth: Annotated[Optional[int], typer.Option(
        "--depth", metavar="N", help="Fold layers nested deeper than N blocks into one row per block, with "
                                     "subtotals (as torchinfo counts: 0 folds the whole network).")] = None,
    optimizer: Optimizer = "adam",
    device: Device = None,
    peak: Peak = None,
    bandwidth: Bandwidth = None,
    chart: Annotated[bool, typer.Option(
        "--chart", help="Bars for each row's share of the time bound and of the peak memory, and the memory over "
                        "the run (terminals only).")] = False,
    as_json: Json = False,
    output: Format = None,
) -> None:
    """Output shape, parameters, MACs, FLOPs, memory and receptive field of every layer."""
    try:
        fmt = output_format(as_json, output)
        if stream is not None:
            if source.given:
                raise SpecError("--stream reads whole documents; give no input shape, layers, -f, --preset or "
                                "--model with it", hint="put each network on its own line of the stream",
                                field="stream")
            if stream != "-":
                try:
                    open(stream, "rb").close()
                except OSError as err:
                    raise SpecError(f"cannot read {stream!r}: {err.strerror}", hint="check the path, or give -",
                                    field="stream") from None
            code = _stream(stream, source.batch, source.dtype)  # failed writes go up to run_app: not bad input
            raise typer.Exit(code)
        if depth is not None and depth < 0:
            raise SpecError(f"--depth must be 0 or more (got {depth})", hint="e.g. --depth 1", field="depth")
        from ..engine.analysis import analyse

        analysis = analyse(source.network())
        target = device_from(device, peak, bandwidth)
        data = analysis.to_dict(optimizer.lower(), target)
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output))
    from ..output.renderers import Result
    from ..output.reports import shape_table

    chart = chart and fmt is OutputFormat.table and sys.stdout.isatty()  # pictures are for people, not pipes
    show(Result(shape_table(analysis, depth, optimizer.lower(), target, chart), data, data["layers"]), fmt)
