"""What every command does alike: build the network it is given, pick the output format, report errors."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import typer

from ..engine.dtypes import DTYPE_BYTES
from ..engine.errors import ConsistencyError, ConvcalcError, ResourceError, SpecError
from ..output.formats import OutputFormat
from .app import ExitCode

# The engine is imported inside the functions: --help and completion never load it.
if TYPE_CHECKING:
    from ..engine.analysis import Network


def fail(err: ConvcalcError, output) -> None:
    print(err.format(), file=sys.stderr)
    if output in (True, OutputFormat.json, OutputFormat.ndjson):
        print(json.dumps({"error": err.to_dict()}))
    refused = isinstance(err, (ResourceError, ConsistencyError))
    raise typer.Exit(int(ExitCode.REFUSED if refused else ExitCode.USAGE))


def read_bytes(path: str) -> bytes:
    """A file's bytes (- for stdin), read only up to the document limit (ONNX files: 2 GiB, protobuf's own)."""
    from ..engine.limits import max_document_bytes

    try:
        handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as err:
        raise SpecError(
            f"cannot read {path!r}: {err.strerror}", hint="check the path, or give - to read stdin", field="file"
        ) from None
    try:
        data = handle.read(64)
        limit = 2**31 if data[:1] == b"\x08" else max_document_bytes()
        parts = [data]
        size = len(data)
        while size <= limit:
            chunk = handle.read(min(1 << 24, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise SpecError(f"cannot read {path!r}: {err.strerror}", hint="check the path", field="file") from None
    finally:
        if path != "-":
            handle.close()
    if size > limit:
        raise SpecError(f"{path!r} is larger than the document limit of {limit:,} bytes",
                        hint="raise it with CONVCALC_MAX_DOCUMENT_BYTES", field="file")
    return b"".join(parts)


def read_text(path: str, data: bytes | None = None) -> str:
    data = read_bytes(path) if data is None else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path!r} is neither UTF-8 text nor an ONNX model",
                        hint="give a JSON or YAML document, print(model) text, or an .onnx file", field="file") from None


def network_from(input_shape, layers, file, batch, dtype, preset=None, model=None, model_args=None) -> "Network":
    """The network from tokens, a document, a preset or a PyTorch model, with --batch and --dtype applied."""
    from ..engine.analysis import Network
    from ..readers import load_document, parse_layer, parse_shape

    if batch is not None and batch < 1:
        raise SpecError(f"--batch must be a positive integer (got {batch})", hint="e.g. --batch 8", field="batch")
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown --dtype {dtype!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype")
    sources = [name for name, given in (("tokens", layers), ("-f", file is not None), ("--preset", preset is not None),
                                        ("--model", model is not None)) if given]
    if len(sources) > 1:
        raise SpecError(f"give the layers one way, not {' and '.join(sources)}: tokens, -f FILE, --preset NAME or "
                        "--model MODULE:NAME", hint="drop all but one (INPUT alone replaces the input shape)",
                        field="file")
    if model_args and model is None:
        raise SpecError("--model-arg goes with --model", hint="e.g. --model torchvision.models:resnet18 "
                        "--model-arg num_classes=10", field="model_arg")
    if model is not None:
        if input_shape is None:
            raise SpecError("a PyTorch model carries no input size", hint="give it, e.g. convcalc shape --model "
                            "torchvision.models:resnet18 3x224x224", field="input")
        from ..readers.pytorch import from_torch, load_model
        from ..readers.pytorch.spec import parse_model_args

        module = load_model(model, parse_model_args(model_args))
        return from_torch(module, parse_shape(input_shape), batch=batch or 1, dtype=dtype or "float32")
    if preset is not None or file is not None:
        given = None if input_shape is None else parse_shape(input_shape)
        if preset is not None:
            from ..presets import load_preset

            network = load_preset(preset)
        else:
            data = read_bytes(file)
            from ..readers.onnx import looks_like_onnx

            if looks_like_onnx(data):  # told apart by content, whatever the file is called
                from ..readers.onnx import from_onnx

                directory = None if file == "-" else os.path.dirname(os.path.abspath(file))
                return from_onnx(data, batch=batch, input_shape=given, dtype=dtype or "float32", directory=directory)
            network = load_document(read_text(file, data), given)
        shape = network.input_shape if given is None else given
        return replace(network, input_shape=shape, batch=batch or network.batch, dtype=dtype or network.dtype)
    if input_shape is None:
        raise SpecError(
            "missing the input shape",
            hint="e.g. convcalc shape 3x224x224 conv:64,k=3,p=1 (or -f net.json, or --preset resnet18)",
            field="input",
        )
    return Network(parse_shape(input_shape), tuple(parse_layer(t) for t in layers or ()), batch or 1, dtype or "float32")


def one_input(positional: str | None, option: str | None) -> str | None:
    if positional is not None and option is not None:
        raise SpecError("the input shape is given twice (INPUT and --input)", hint="give it once", field="input")
    return positional if option is None else option


def output_format(as_json: bool, output: OutputFormat | None) -> OutputFormat:
    """The format asked for: --format, or --json, or the table."""
    if as_json and output not in (None, OutputFormat.json):
        raise SpecError(f"--json and --format {output.value} ask for two formats", hint="give one of them",
                        field="format")
    return OutputFormat.json if as_json else (output or OutputFormat.table)


def device_from(name: str | None, peak: str | None, bandwidth: str | None):
    """The roofline device the options describe, or None when none is given."""
    if name is None and peak is None and bandwidth is None:
        return None
    from ..engine.devices import Device
    from ..engine.roofline import find_device
    from ..engine.units import parse_rate

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
        value = parse_rate(peak, "FLOP")
        if value is None:
            raise SpecError(f"--peak {peak[:40]!r} is not a throughput", hint="e.g. --peak 19.5T (FLOP/s)",
                            field="peak")
        peaks = dict.fromkeys(DTYPE_BYTES, value)  # the user's figure, for whatever dtype is analysed
    rate = base.bandwidth if base is not None else None
    if bandwidth is not None:
        rate = parse_rate(bandwidth, "B")
        if rate is None:
            raise SpecError(f"--bandwidth {bandwidth[:40]!r} is not a bandwidth", hint="e.g. --bandwidth 900GB/s",
                            field="bandwidth")
    label = base.name if base is not None else "the given device"
    if base is not None and (peak is not None or bandwidth is not None):
        label += " (with the given " + " and ".join(
            word for word, given in (("peak", peak), ("bandwidth", bandwidth)) if given is not None) + ")"
    return Device(label, peaks, rate, base.source if base is not None else "given on the command line")
