"""The ``convcalc`` command line: parse arguments, call the core, render.

Data goes to stdout; errors, hints and notes to stderr. JSON is printed
with plain ``print`` so nothing wraps it.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from typing import List, Optional

import typer

from . import __version__
from .analysis import DTYPE_BYTES, Network, analyse
from .errors import ConvcalcError, ResourceError, SpecError
from .parsing import load_document, parse_layer, parse_shape


class ExitCode(IntEnum):
    """What convcalc's exit status means."""

    OK = 0
    REFUSED = 1  # a computation refused, or a --stream line failed
    USAGE = 2  # bad usage, spec or document


SHAPE_EXAMPLES = """
Examples:

  convcalc shape 3x224x224 conv:64,k=7,s=2,p=3,bias=false bn relu maxpool:k=3,s=2,p=1

  convcalc shape 64x16000 conv:64,k=3,p=same --json

  convcalc shape 3x224x224 "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"

  convcalc shape -f net.json          (a JSON network document; - reads stdin)

  convcalc shape --stream sweep.ndjson   (one document per line in, one result per line out)
"""

app = typer.Typer(
    name="convcalc",
    help="Exact shapes, parameters, MACs/FLOPs and receptive fields of convolutional layers, as PyTorch computes them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"convcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Exact shapes, parameters, MACs/FLOPs and receptive fields of convolutional layers, as PyTorch computes them."""


def _fail(err: ConvcalcError, as_json: bool) -> None:
    print(err.format(), file=sys.stderr)
    if as_json:
        print(json.dumps({"error": err.to_dict()}))
    code = ExitCode.REFUSED if isinstance(err, ResourceError) else ExitCode.USAGE
    raise typer.Exit(int(code))


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as err:
        raise SpecError(
            f"cannot read {path!r}: {err.strerror}", hint="check the path, or give - to read stdin", field="file"
        ) from None
    except UnicodeDecodeError:
        raise SpecError(f"{path!r} is not UTF-8 text", hint="give a JSON document saved as UTF-8", field="file") from None


def _network(input_shape, layers, file, batch, dtype) -> Network:
    if file is not None:
        if input_shape is not None or layers:
            raise SpecError(
                "give either an input shape and layer tokens, or -f FILE, not both",
                hint="put the layers in the document, or drop -f",
                field="file",
            )
        network = load_document(_read_text(file))
        return Network(
            network.input_shape, network.layers, batch or network.batch, dtype or network.dtype
        )
    if input_shape is None:
        raise SpecError(
            "missing the input shape",
            hint="e.g. convcalc shape 3x224x224 conv:64,k=3,p=1 (or -f net.json)",
            field="input",
        )
    return Network(parse_shape(input_shape), tuple(parse_layer(t) for t in layers or ()), batch or 1, dtype or "float32")


def _check_options(batch, dtype) -> None:
    if batch is not None and batch < 1:
        raise SpecError(f"--batch must be a positive integer (got {batch})", hint="e.g. --batch 8", field="batch")
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown --dtype {dtype!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype")


def _print_analysis(analysis, as_json: bool) -> None:
    if as_json:
        print(json.dumps(analysis.to_dict(), indent=2))
        return
    from .render import render_plain

    if sys.stdout.isatty():
        from rich.console import Console

        from .render import render_rich

        render_rich(analysis, Console())
    else:
        print(render_plain(analysis))


def _stream(path: str, batch, dtype) -> int:
    """One document a line in, one result a line out; a bad line gives an error object."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    failed = False
    try:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                network = load_document(line)
                network = Network(network.input_shape, network.layers, batch or network.batch, dtype or network.dtype)
                result = analyse(network).to_dict()
            except ConvcalcError as err:
                failed = True
                result = {"error": {**err.to_dict(), "line": number}}
            except Exception as err:  # noqa: BLE001 - one line's failure must not lose the others
                failed = True
                result = {"error": {"type": "InternalError", "message": f"internal error: {err!r}", "line": number,
                                    "layer": None, "field": None}}
            print(json.dumps(result), flush=True)
    finally:
        if handle is not sys.stdin:
            handle.close()
    return int(ExitCode.REFUSED if failed else ExitCode.OK)


@app.command(epilog=SHAPE_EXAMPLES)
def shape(
    input_shape: Optional[str] = typer.Argument(
        None, metavar="INPUT", help="Input shape, channels first without the batch: 3x224x224, 64x16000, 16x8x56x56."
    ),
    layers: Optional[List[str]] = typer.Argument(
        None, metavar="LAYER...", help="Layer tokens such as conv:64,k=3,s=2,p=1, bn, relu, maxpool:k=3,s=2."
    ),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Read a JSON network document (- for stdin)."),
    stream: Optional[str] = typer.Option(
        None, "--stream", help="Read one JSON document per line (- for stdin), print one JSON result per line."
    ),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", help="Batch size for MACs, FLOPs and memory [default: 1]."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Element type for memory: " + ", ".join(DTYPE_BYTES) + "."),
    as_json: bool = typer.Option(False, "--json", help="Print the convcalc.shape/1 JSON object."),
) -> None:
    """Output shape, parameters, MACs, FLOPs, memory and receptive field of every layer."""
    try:
        _check_options(batch, dtype)
        if stream is not None:
            if input_shape is not None or layers or file is not None:
                raise SpecError("--stream reads whole documents; give no input shape, layers or -f with it",
                                hint="put each network on its own line of the stream", field="stream")
            try:
                code = _stream(stream, batch, dtype)
            except OSError as err:
                raise SpecError(f"cannot read {stream!r}: {err.strerror}", hint="check the path, or give -",
                                field="stream") from None
            raise typer.Exit(code)
        analysis = analyse(_network(input_shape, layers, file, batch, dtype))
    except ConvcalcError as err:
        _fail(err, as_json)
    _print_analysis(analysis, as_json)


def run() -> None:
    """Entry point of the console script."""
    app()
