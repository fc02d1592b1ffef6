"""convcalc shape: every layer's figures, for one network or a stream of documents, one a line."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, ResourceError, SpecError
from ..output.formats import OutputFormat
from .app import ExitCode, app
from .common import device_from, fail, input_notes, output_format, wants_json
from .options import Bandwidth, Device, Format, Json, Optimizer, Peak, Tf32Matmul
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


# How far past the limit an over-long --stream line is read (and dropped) looking for its end: a
# line with no end in sight (/dev/zero) stops the stream instead of reading forever.
SKIP_FACTOR = 16
_ENDLESS = object()


def _lines(handle, limit: int):
    """(number, bytes) for each line, without its newline: split at b"\\n" only (never at \\x1c or
    U+2028, where str.splitlines splits), with at most ``limit`` bytes of a line and one chunk kept.
    A longer line is read to its end without being kept and given as None; one longer than
    ``SKIP_FACTOR`` times the limit is given as ``_ENDLESS``, and the lines stop there."""
    read = getattr(handle, "read1", handle.read)  # what has arrived, at most a chunk: lines come out as they come in
    pending = bytearray()  # the lines read and not yet given
    number = 0
    while True:
        newline = pending.find(b"\n")
        while newline == -1 and len(pending) <= limit:
            chunk = read(1 << 20)
            if not chunk:
                if pending:  # a last line without its newline
                    yield number + 1, bytes(pending)
                return
            searched = len(pending)
            pending += chunk
            newline = pending.find(b"\n", searched)
        number += 1
        if newline != -1 and newline <= limit:
            yield number, bytes(pending[:newline])
            del pending[:newline + 1]
            continue
        if newline != -1:
            length = newline
            del pending[:newline + 1]
        else:  # past the limit and no end yet: skip the rest, keeping none of it
            length = len(pending)
            pending.clear()
            while length <= SKIP_FACTOR * limit:
                chunk = read(1 << 20)
                newline = chunk.find(b"\n")
                if not chunk or newline != -1:
                    length += len(chunk) if newline == -1 else newline
                    pending += chunk[newline + 1:] if chunk else b""
                    break
                length += len(chunk)
        if length > SKIP_FACTOR * limit:
            yield number, _ENDLESS
            return
        yield number, None


def _stream(path: str, source: NetworkSource, optimizer: str, device) -> int:
    """One document a line in, one JSON result a line out, each what ``-f`` of that document with
    ``--json`` and the same options prints (the document route is the same: ``document_network``); a
    bad line gives an error object with its line number, and the lines after it still come through."""
    from ..engine.analysis import analyse
    from ..engine.limits import max_document_bytes
    from ..engine.schema import error_object, internal_error_object

    if path == "-" and getattr(sys.stdin, "buffer", None) is None:  # started with its standard input closed
        raise SpecError("cannot read stdin: standard input is closed", hint="pipe the documents in, or give a FILE",
                        field="stream")
    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    failed = False
    limit = max_document_bytes()
    try:
        for number, raw in _lines(handle, limit):
            try:
                if raw is None or raw is _ENDLESS:
                    end = "" if raw is None else (f", and has not ended {SKIP_FACTOR * limit:,} bytes on: "
                                                  "the stream stops here")
                    raise SpecError(f"the line is longer than the document limit of {limit:,} bytes "
                                    f"(CONVCALC_MAX_DOCUMENT_BYTES){end}",
                                    hint="raise it with CONVCALC_MAX_DOCUMENT_BYTES", field="document")
                result = analyse(source.document_network(raw, "the line")).to_dict(optimizer, device)
            except ConvcalcError as err:
                failed = True
                result = error_object(err.to_dict(), number)
            except (MemoryError, RecursionError) as err:  # this line's, not the stream's: the next lines go on
                failed = True
                what = "ran out of memory" if isinstance(err, MemoryError) else "nests too deeply"
                result = error_object(ResourceError(f"the line {what}", hint="split the network, or lower the "
                                                    "limits (see docs/limits.md)").to_dict(), number)
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
    tf32_matmul: Tf32Matmul = False,
    chart: Annotated[bool, typer.Option(
        "--chart", help="Bars for each row's share of the time bound and of the peak memory, and the memory over "
                        "the run (terminals only).")] = False,
    as_json: Json = False,
    output: Format = None,
) -> None:
    """Output shape, parameters, MACs, FLOPs, memory and receptive field of every layer."""
    network = None
    try:
        fmt = output_format(as_json, output)
        if depth is not None and depth < 0:
            raise SpecError(f"--depth must be 0 or more (got {depth})", hint="e.g. --depth 1", field="depth")
        target = device_from(device, peak, bandwidth, tf32_matmul)
        if stream is not None:
            _check_stream(stream, source, output)
            raise typer.Exit(_stream(stream, source, optimizer.lower(), target))  # failed writes go up to run_app
        from ..engine.analysis import analyse

        network = source.network()
        analysis = analyse(network)
        data = analysis.to_dict(optimizer.lower(), target)
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output), input_notes(source, network))
    from ..output.render import Table
    from ..output.renderers import Result

    if fmt in (OutputFormat.json, OutputFormat.ndjson):  # the object is all they print: no table is made
        table = Table((), frozenset(), (), None, ())
    else:
        from ..output.reports import shape_table

        chart = chart and fmt is OutputFormat.table and sys.stdout.isatty()  # pictures are for people, not pipes
        table = shape_table(analysis, depth, optimizer.lower(), target, chart)
    show(Result(table, data, data["layers"]), fmt)


def _check_stream(stream: str, source: NetworkSource, output: OutputFormat | None) -> None:
    """--stream takes whole documents, and every option ``-f --json`` takes (INPUT, --batch, --dtype,
    --optimizer, --device, ...), but no other network and no format other than JSON."""
    if source.layers or source.file is not None or source.preset is not None or source.model is not None:
        raise SpecError("--stream reads whole documents; give no layers, -f, --preset or --model with it",
                        hint="put each network on its own line of the stream", field="stream")
    if source.input_shape is not None:  # checked once, before any line: every line would say the same
        from ..readers import parse_shape

        parse_shape(source.input_shape)
    if output not in (None, OutputFormat.json, OutputFormat.ndjson):
        raise SpecError(f"--stream prints one JSON object a line, not {output.value}",
                        hint="drop --format, or convert the lines one at a time with -f", field="format")
    if stream != "-":
        try:
            open(stream, "rb").close()
        except OSError as err:
            raise SpecError(f"cannot read {stream!r}: {err.strerror}", hint="check the path, or give -",
                            field="stream") from None
