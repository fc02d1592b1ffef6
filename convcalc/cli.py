"""The ``convcalc`` command line: parse arguments, call the core, render.

Data goes to stdout; errors, hints, notes and progress to stderr. JSON is
printed with plain ``print`` so nothing wraps it. NumPy is imported only by
the commands that execute layers.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from enum import IntEnum
from typing import TYPE_CHECKING, List, Optional

import typer

from . import __version__
from .dtypes import DTYPE_BYTES
from .errors import ConsistencyError, ConvcalcError, ResourceError, SpecError
from .formats import OutputFormat

# The engine is imported inside the commands: --help and completion never load it.
if TYPE_CHECKING:
    from .analysis import Network


class ExitCode(IntEnum):
    """What convcalc's exit status means."""

    OK = 0
    REFUSED = 1  # a computation refused (memory, or a disagreement that is a bug), or a --stream line failed
    USAGE = 2  # bad usage, spec or document


SHAPE_EXAMPLES = """
Examples:

  convcalc shape 3x224x224 conv:64,k=7,s=2,p=3,bias=false bn relu maxpool:k=3,s=2,p=1

  convcalc shape 64x16000 conv:64,k=3,p=same --json

  convcalc shape 3x224x224 "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"

  convcalc shape -f net.json          (a JSON network document; - reads stdin)

  convcalc shape --stream sweep.ndjson   (one document per line in, one result per line out)

  convcalc shape --preset resnet50 3x320x320   (a shipped network on another input)

  python -c "import torch; print(model)" | convcalc shape -f - --input 3x224x224   (print(model) text)
"""

RUN_EXAMPLES = """
Examples:

  convcalc run 3x224x224 conv:64,k=7,s=2,p=3 bn relu maxpool:k=3,s=2,p=1 --batch 8

  convcalc run 64x16x16 convT:32,k=4,s=2,p=1 --dtype float64 --seed 3 --json

  convcalc run -f net.json --repeat 5 --memory-limit 2GiB
"""

COMPARE_EXAMPLES = """
Examples:

  convcalc compare 32x56x56 conv:64,k=3,p=1

  convcalc compare 32x56x56 --out 64 -k 3 -p 1 --no-bias --groups 4

  convcalc compare 144x56x56 conv:144,k=3,p=1 --run --batch 8 --repeat 3 --json
"""

app = typer.Typer(
    name="convcalc",
    help="Exact shapes, parameters, MACs/FLOPs and receptive fields of convolutional layers, as PyTorch computes them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _complete_layer(incomplete: str) -> list[str]:
    """Layer kinds for a token being typed; after KIND:, that kind's argument keys."""
    from .parsing.registry import find_kind, token_names

    if ":" not in incomplete:
        return [name for name in token_names() if name.startswith(incomplete.lower())]
    kind = find_kind(incomplete.split(":", 1)[0])
    if kind is None:
        return []
    typed = incomplete.rsplit(",", 1)[-1].split(":")[-1]  # the argument being typed
    done = incomplete[: len(incomplete) - len(typed)]
    return [f"{done}{key}=" for key in kind.fields if key.startswith(typed)]


def _complete_preset(incomplete: str) -> list[str]:
    from .presets import preset_names

    return [name for name in preset_names() if name.startswith(incomplete)]


# The network a command works on is given the same way everywhere.
INPUT = typer.Argument(
    None, metavar="INPUT", help="Input shape, channels first without the batch: 3x224x224, 64x16000, 16x8x56x56."
)
LAYERS = typer.Argument(
    None, metavar="LAYER...", help="Layer tokens such as conv:64,k=3,s=2,p=1, bn, relu, maxpool:k=3,s=2.",
    autocompletion=_complete_layer,
)
FILE = typer.Option(None, "--file", "-f", help="Read a JSON network document (- for stdin).")
BATCH = typer.Option(None, "--batch", "-b", help="Batch size [default: 1, or the document's].")
INPUT_OPTION = typer.Option(None, "--input", "-i", help="The input shape, as INPUT (needed for print(model) text).")
PRESET = typer.Option(None, "--preset", help="A shipped network (see convcalc presets); INPUT, if given, replaces "
                                              "its input shape.", autocompletion=_complete_preset)
JSON = typer.Option(False, "--json", help="Print the JSON object (shorthand for --format json).")
FORMAT = typer.Option(None, "--format", help="table (the default), json, ndjson (an object per row), csv or markdown.",
                      case_sensitive=False)


def _version(value: bool) -> None:
    if value:
        print(f"convcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Exact shapes, parameters, MACs/FLOPs and receptive fields of convolutional layers, as PyTorch computes them."""


def _fail(err: ConvcalcError, output) -> None:
    print(err.format(), file=sys.stderr)
    if output in (True, OutputFormat.json, OutputFormat.ndjson):
        print(json.dumps({"error": err.to_dict()}))
    refused = isinstance(err, (ResourceError, ConsistencyError))
    raise typer.Exit(int(ExitCode.REFUSED if refused else ExitCode.USAGE))


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


def _network(input_shape, layers, file, batch, dtype, preset=None) -> "Network":
    """The network from tokens, a document or a preset, with --batch and --dtype applied."""
    from .analysis import Network
    from .parsing import load_document, parse_layer, parse_shape

    if batch is not None and batch < 1:
        raise SpecError(f"--batch must be a positive integer (got {batch})", hint="e.g. --batch 8", field="batch")
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown --dtype {dtype!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype")
    if preset is not None or file is not None:
        if layers or (preset is not None and file is not None):
            raise SpecError(
                "give the layers one way: tokens, -f FILE or --preset NAME",
                hint="drop the layer tokens (INPUT alone replaces the input shape)", field="file")
        given = None if input_shape is None else parse_shape(input_shape)
        if preset is not None:
            from .presets import load_preset

            network = load_preset(preset)
        else:
            network = load_document(_read_text(file), given)
        shape = network.input_shape if given is None else given
        return replace(network, input_shape=shape, batch=batch or network.batch, dtype=dtype or network.dtype)
    if input_shape is None:
        raise SpecError(
            "missing the input shape",
            hint="e.g. convcalc shape 3x224x224 conv:64,k=3,p=1 (or -f net.json, or --preset resnet18)",
            field="input",
        )
    return Network(parse_shape(input_shape), tuple(parse_layer(t) for t in layers or ()), batch or 1, dtype or "float32")


def _one_input(positional: str | None, option: str | None) -> str | None:
    if positional is not None and option is not None:
        raise SpecError("the input shape is given twice (INPUT and --input)", hint="give it once", field="input")
    return positional if option is None else option


def _output(as_json: bool, output: OutputFormat | None) -> OutputFormat:
    """The format asked for: --format, or --json, or the table."""
    if as_json and output not in (None, OutputFormat.json):
        raise SpecError(f"--json and --format {output.value} ask for two formats", hint="give one of them",
                        field="format")
    return OutputFormat.json if as_json else (output or OutputFormat.table)


def _show(table, data: dict, output: OutputFormat, records: list | None = None) -> None:
    """Print a result in the chosen format: data to stdout, nothing else."""
    from . import render

    if output is OutputFormat.json:
        print(json.dumps(data, indent=2))
    elif output is OutputFormat.ndjson:
        for record in records if records is not None else [data]:
            print(json.dumps(record))
    elif output is OutputFormat.csv:
        print(render.render_csv(table), end="")
    elif output is OutputFormat.markdown:
        print(render.render_markdown(table))
    elif sys.stdout.isatty():
        from rich.console import Console

        render.render_rich(table, Console())
    else:
        print(render.render_plain(table))


def _stream(path: str, batch, dtype) -> int:
    """One document a line in, one result a line out; a bad line gives an error object."""
    from .analysis import Network, analyse
    from .parsing import load_document

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
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    input_option: Optional[str] = INPUT_OPTION,
    stream: Optional[str] = typer.Option(
        None, "--stream", help="Read one JSON document per line (- for stdin), print one JSON result per line."
    ),
    batch: Optional[int] = BATCH,
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Element type for memory: " + ", ".join(DTYPE_BYTES) + "."),
    depth: Optional[int] = typer.Option(None, "--depth", help="Fold layers nested deeper than N blocks into one row "
                                                               "each, with subtotals."),
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """Output shape, parameters, MACs, FLOPs, memory and receptive field of every layer."""
    try:
        fmt = _output(as_json, output)
        if stream is not None:
            if input_shape is not None or layers or file is not None or preset is not None:
                raise SpecError("--stream reads whole documents; give no input shape, layers, -f or --preset with it",
                                hint="put each network on its own line of the stream", field="stream")
            _network("1", None, None, batch, dtype)  # checks --batch and --dtype once
            try:
                code = _stream(stream, batch, dtype)
            except OSError as err:
                raise SpecError(f"cannot read {stream!r}: {err.strerror}", hint="check the path, or give -",
                                field="stream") from None
            raise typer.Exit(code)
        input_shape = _one_input(input_shape, input_option)
        if depth is not None and depth < 1:
            raise SpecError(f"--depth must be at least 1 (got {depth})", hint="e.g. --depth 1", field="depth")
        from .analysis import analyse

        analysis = analyse(_network(input_shape, layers, file, batch, dtype, preset))
    except ConvcalcError as err:
        _fail(err, OutputFormat.json if as_json else output)
    from .render import shape_table

    data = analysis.to_dict()
    _show(shape_table(analysis, depth), data, fmt, data["layers"])


@app.command(epilog=RUN_EXAMPLES)
def run(
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    input_option: Optional[str] = INPUT_OPTION,
    batch: Optional[int] = BATCH,
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 (default) or float64."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input and weights."),
    repeat: int = typer.Option(1, "--repeat", help="Run each layer this many times; report the median time."),
    memory_limit: Optional[str] = typer.Option(
        None, "--memory-limit", help="Refuse anything needing more memory, e.g. 2GiB [default: half the free memory]."
    ),
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """Execute the layers on random data with the NumPy backend: time, GFLOP/s and output values per layer."""
    try:
        fmt = _output(as_json, output)
        network = _network(_one_input(input_shape, input_option), layers, file, batch, dtype, preset)
        from .units import parse_bytes

        limit = None if memory_limit is None else parse_bytes(memory_limit)
        if memory_limit is not None and limit is None:
            raise SpecError(f"--memory-limit {memory_limit!r} is not a size", hint="e.g. --memory-limit 2GiB",
                            field="memory_limit")
        from .backend.memory import set_memory_limit
        from .execute import execute

        set_memory_limit(limit)
        with _progress(network, repeat) as progress:
            execution = execute(network, seed=seed, repeat=repeat, progress=progress)
    except ConvcalcError as err:
        _fail(err, OutputFormat.json if as_json else output)
    from .render import run_table

    data = execution.to_dict()
    _show(run_table(execution), data, fmt, data["layers"])


class _progress:
    """A progress bar on stderr, when stderr is a terminal and the run is long."""

    LONG_MACS = 2 * 10**9

    def __init__(self, network, repeat: int) -> None:
        self.bar = None
        if sys.stderr.isatty() and len(network.layers) > 1:
            from .analysis import analyse

            try:
                work = analyse(network).totals.macs * repeat
            except ConvcalcError:
                work = 0  # execute reports the error
            if work >= self.LONG_MACS:
                from rich.console import Console
                from rich.progress import Progress

                self.bar = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("running layers", total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_app() -> None:
    """Entry point of the console script."""
    if "_CONVCALC_COMPLETE" in os.environ:  # a shell asking for completions: only then load that machinery
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="convcalc")


SHELLS = ("bash", "zsh", "fish")


@app.command("completion")
def completion_command(
    shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
) -> None:
    """Print the shell completion script (the files in completions/ are this output).

    Example: convcalc completion bash > ~/.local/share/bash-completion/completions/convcalc
    """
    if shell not in SHELLS:
        _fail(SpecError(f"no completion for shell {shell!r}", hint=f"use one of {', '.join(SHELLS)}", field="shell"),
              None)
    print(completion_script(shell), end="")


def completion_script(shell: str) -> str:
    """The completion script for ``shell``, as Typer writes it for this program."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="convcalc", complete_var="_CONVCALC_COMPLETE", shell=shell).rstrip() + "\n"


# The options that spell out a convolution, and the arguments they stand for.
_CONV_OPTIONS = {"out_channels": "--out", "kernel_size": "-k", "stride": "-s", "padding": "-p", "dilation": "-d",
                 "bias": "--bias"}


def _conv_from_options(values: dict):
    from .errors import Origin
    from .parsing.build import build_layer, lookup_kind
    from .parsing.values import read_text_value

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
    stride: Optional[str] = typer.Option(None, "-s", "--stride", help="Stride [default: 1]."),
    padding: Optional[str] = typer.Option(None, "-p", "--padding", help="Padding: int, per-axis, same or valid."),
    dilation: Optional[str] = typer.Option(None, "-d", "--dilation", help="Dilation [default: 1]."),
    bias: Optional[bool] = typer.Option(None, "--bias/--no-bias", help="Bias in every convolution [default: bias]."),
    groups: Optional[int] = typer.Option(None, "--groups", "-g",
                                         help="Groups of the grouped and ShuffleNet variants [default: the largest "
                                              "below in_channels dividing both channel counts]."),
    run: bool = typer.Option(False, "--run", help="Also time every variant with the NumPy backend."),
    batch: Optional[int] = BATCH,
    repeat: int = typer.Option(1, "--repeat", help="With --run: runs per layer; the median time counts."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 (default) or float64 with --run."),
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """A convolution against its depthwise-separable, grouped, spatially separable, flattened and ShuffleNet variants."""
    from .compare import compare, time_variants

    try:
        fmt = _output(as_json, output)
        options = {"out_channels": out, "kernel_size": kernel_size, "stride": stride, "padding": padding,
                   "dilation": dilation, "bias": bias}
        if layer is not None and any(v is not None for v in options.values()):
            raise SpecError("give the layer as a token or as options (--out, -k, ...), not both",
                            hint="e.g. convcalc compare 32x56x56 conv:64,k=3,p=1", field="layer")
        if input_shape is None:
            raise SpecError("missing the input shape", hint="e.g. convcalc compare 32x56x56 conv:64,k=3,p=1",
                            field="input")
        network = _network(input_shape, [layer] if layer is not None else [], None, batch, dtype)
        spec = network.layers[0] if network.layers else _conv_from_options(options)
        if groups is not None and groups < 1:
            raise SpecError(f"--groups must be a positive integer (got {groups})", hint="e.g. --groups 4",
                            field="groups")
        comparison = compare(network.input_shape, spec, groups=groups, batch=network.batch, dtype=network.dtype)
        if run:
            from .backend.memory import set_memory_limit

            set_memory_limit(None)
            comparison = time_variants(comparison, repeat=repeat)
    except ConvcalcError as err:
        _fail(err, OutputFormat.json if as_json else output)
    from .render import compare_table

    data = comparison.to_dict()
    _show(compare_table(comparison), data, fmt, data["variants"])


@app.command("presets")
def presets_command(
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """List the shipped networks, for --preset.

    Example: convcalc presets --format markdown
    """
    try:
        fmt = _output(as_json, output)
    except ConvcalcError as err:
        _fail(err, None)
    from .analysis import analyse
    from .presets import load_preset, preset_description, preset_names
    from .render import Table
    from .units import human

    rows, data = [], []
    for name in preset_names():
        network = load_preset(name)
        totals = analyse(network).totals
        rows.append((name, "x".join(map(str, network.input_shape)), human(totals.params), human(totals.macs),
                     preset_description(name)))
        data.append({"name": name, "input_shape": list(network.input_shape), "params": totals.params,
                     "macs": totals.macs, "description": preset_description(name)})
    columns = ("preset", "input", "params", "MACs", "description")
    table = Table(columns, frozenset({"params", "MACs"}), tuple(rows), None,
                  ("use: convcalc shape --preset NAME [INPUT]",))
    _show(table, {"schema": "convcalc.presets/1", "presets": data}, fmt, data)


SOLVE_EXAMPLES = """
Examples:

  convcalc solve 3x224x224 conv:64,k=7,s=2,p=? --target 64x112x112

  convcalc solve 64x16x16 convT:32,k=3,s=2,p=1,op=? --target 32x32x32

  convcalc solve 3x224x224 conv:64,k=?,s=2,p=? --target 64x112x112 --range k=1..7

  convcalc solve 3x225x225 conv:64,k=3,s=2,p=same_upper      (TensorFlow's SAME as PyTorch layers)

  convcalc solve 3x224x224 conv:64,k=3,s=2,p=1 --undo        (transposed layers that undo it)

  convcalc solve 3x?x? --preset unet --range input=1..256    (the input sizes a network accepts)

  convcalc solve 64x64x64 conv:64,k=3,p=same,d=? --receptive-field 61   (a dilation schedule)
"""


def _parse_ranges(texts) -> dict:
    from .parsing.registry import SHORT_KEYS

    ranges = {}
    for text in texts or ():
        key, _, span = text.partition("=")
        low, dots, high = span.partition("..")
        name = {"out": "out_channels", "input": "input"}.get(key.strip(), SHORT_KEYS.get(key.strip(), key.strip()))
        if not dots or not low.strip().isdigit() or not high.strip().isdigit() or int(low) > int(high):
            raise SpecError(f"--range {text!r} is not NAME=LOW..HIGH", hint="e.g. --range p=0..32", field="range")
        from .solve import DEFAULT_RANGES

        if name not in DEFAULT_RANGES and name != "input":
            raise SpecError(f"--range {text!r}: {key} cannot be solved for",
                            hint=f"give one of {', '.join(DEFAULT_RANGES)} or input", field="range")
        ranges[name] = (int(low), int(high))
    return ranges


def _input_template(text: str) -> tuple:
    from .parsing import parse_shape

    if "?" not in text:
        return parse_shape(text)
    parts = text.split("x")
    if any(p != "?" and not p.isdigit() for p in parts):
        parse_shape(text.replace("?", "1"))  # raises the usual message for the bad part
    return tuple(None if p == "?" else int(p) for p in parts)


@app.command("solve", epilog=SOLVE_EXAMPLES)
def solve_command(
    input_shape: Optional[str] = typer.Argument(None, metavar="INPUT",
                                                help="Input shape; ? for sizes to find (with -f or --preset)."),
    layers: Optional[List[str]] = typer.Argument(None, metavar="LAYER...",
                                                 help="Layer tokens; ? marks an unknown: p=?, k=?, s=?, d=?, op=?."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="The output shape wanted (? matches any size)."),
    ranges: Optional[List[str]] = typer.Option(None, "--range", help="Search range, e.g. p=0..32, k=1..7, input=1..1024."),
    undo: bool = typer.Option(False, "--undo", help="Find transposed convolutions that undo the one LAYER."),
    receptive_field: Optional[int] = typer.Option(None, "--receptive-field",
                                                  help="Repeat LAYER until the receptive field reaches N (d=?: "
                                                       "doubling dilations)."),
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """Find the parameters (written ?) that give the shape you want, or the input sizes a network accepts."""
    from .analysis import Network
    from .parsing import parse_layer
    from .parsing.tokens import split_token
    from .solve import plan_receptive_field, solve, solve_input, template_of
    from .render import Table

    try:
        fmt = _output(as_json, output)
        if input_shape is None:
            raise SpecError("missing the input shape", hint="e.g. convcalc solve 3x224x224 conv:64,k=7,s=2,p=? "
                                                            "--target 64x112x112", field="input")
        search = _parse_ranges(ranges)
        template = _input_template(input_shape)
        if None in template:
            network = _network(None, layers, file, None, None, preset) if (file or preset) else Network(
                (1,), tuple(parse_layer(t) for t in layers or ()))
            low, high = search.get("input", (1, 512))
            sizes = solve_input(template, network.layers, low, high)
            rows = tuple((str(n), "x".join(str(n if t is None else t) for t in template)) for n in sizes.accepted[:24])
            footer = (f"accepted input sizes in {low}..{high}: {sizes.pattern()}",
                      f"smallest: {sizes.smallest}" if sizes.accepted else "no size in the range is accepted")
            data = sizes.to_dict()
            _show(Table(("size", "input"), frozenset({"size"}), rows, None, footer), data, fmt, data["solutions"])
            raise typer.Exit(int(ExitCode.OK if sizes.accepted else ExitCode.REFUSED))
        templates = [template_of(*split_token(t)) for t in layers or ()]
        if not templates:
            raise SpecError("give the layers to solve", hint="e.g. conv:64,k=7,s=2,p=?", field="layer")
        if receptive_field is not None:
            if len(templates) != 1 or receptive_field < 1:
                raise SpecError("--receptive-field takes one LAYER and a positive size",
                                hint="e.g. convcalc solve 64x64x64 conv:64,k=3,p=same --receptive-field 15",
                                field="receptive_field")
            plan = plan_receptive_field(template, templates[0], receptive_field)
            from .units import per_axis_text

            rows = tuple((str(r.index), f"{r.type} {r.summary}".strip(), "x".join(map(str, r.output_shape)),
                          per_axis_text(r.receptive_field.size)) for r in plan.layers)
            verdict = (f"{len(plan.layers)} layers reach a receptive field of {'x'.join(map(str, plan.size))}"
                       if plan.reached else f"the receptive field stops at {'x'.join(map(str, plan.size))}: "
                                            f"the input is too small for more layers")
            data = {"schema": "convcalc.solve/1", "receptive_field": receptive_field, "reached": plan.reached,
                    "layers": len(plan.layers), "dilations": list(plan.dilations), "size": list(plan.size)}
            _show(Table(("#", "layer", "output", "RF"), frozenset({"#", "RF"}), rows, None, (verdict,)), data, fmt)
            raise typer.Exit(int(ExitCode.OK if plan.reached else ExitCode.REFUSED))
        wanted = _input_template(target) if target else None
        if undo:
            if len(templates) != 1 or templates[0].slots:
                raise SpecError("--undo takes one known LAYER", hint="e.g. conv:64,k=3,s=2,p=1 --undo", field="undo")
            layer = parse_layer(layers[0])
            stride = getattr(layer, "stride", None) or getattr(layer, "kernel_size", 1)
            stride = stride if isinstance(stride, int) else "x".join(map(str, stride))
            templates.append(template_of(*split_token(f"convT:{template[0]},k=?,s={stride},p=?,op=?")))
            wanted = template
        if wanted is None and any(t.slots for t in templates):
            raise SpecError("give the shape wanted", hint="e.g. --target 64x112x112", field="target")
        result = solve(template, templates, wanted, search)
    except ConvcalcError as err:
        _fail(err, OutputFormat.json if as_json else output)
    keys = list(dict.fromkeys(k for s in result.solutions for k in s.values))
    rows = tuple((*[_value_text(s.values.get(k)) for k in keys],
                  " → ".join(f"{r.type} {r.summary}".strip() for r in s.layers)) for s in result.solutions)
    footer = [f"{len(result.solutions)} solution(s) among {result.searched:,} candidates"]
    if not result.solutions:
        footer.append("no solution; nearest reachable: " + ", ".join("x".join(map(str, s)) for s in result.nearest))
        print("error: " + footer[-1], file=sys.stderr)
    data = result.to_dict()
    _show(Table((*keys, "layers"), frozenset(keys), rows, None, tuple(footer)), data, fmt, data["solutions"])
    raise typer.Exit(int(ExitCode.OK if result.solutions else ExitCode.REFUSED))


def _value_text(value) -> str:
    if value is None:
        return ""
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


EXPLAIN_EXAMPLES = """
Examples:

  convcalc explain 3x224x224 conv:64,k=7,s=2,p=3

  convcalc explain 1x5x5 conv:1,k=3,s=2,p=1 maxpool:k=2,s=2,p=1,ceil_mode=true --at 1,1

  convcalc explain 1x4x4 convT:1,k=3,s=2,p=1,op=1       (the overlap map: checkerboard warning)

  convcalc explain 1x4x4 conv:1,k=3 --matrix            (the convolution as a matrix, seed 000)
"""


@app.command("explain", epilog=EXPLAIN_EXAMPLES)
def explain_command(
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    batch: Optional[int] = BATCH,
    at: Optional[str] = typer.Option(None, "--at", help="The output position to draw, e.g. 0,1 [default: 0]."),
    matrix: bool = typer.Option(False, "--matrix", help="Write the (single-layer) convolution as a matrix."),
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """The arithmetic, shown: formulas with your numbers, products, receptive fields and small diagrams."""
    from .explain import explain, matrix_lines

    try:
        fmt = _output(as_json, output)
        position = None
        if at is not None:
            parts = at.replace("x", ",").split(",")
            if not all(p.strip().isdigit() for p in parts):
                raise SpecError(f"--at {at!r} is not an output position", hint="e.g. --at 0,1", field="at")
            position = tuple(int(p) for p in parts)
        network = _network(input_shape, layers, file, batch, None, preset)
        lines = explain(network, at=position)
        if matrix:
            if len(network.layers) != 1:
                raise SpecError("--matrix takes one layer", hint="e.g. convcalc explain 1x4x4 conv:1,k=3 --matrix",
                                field="matrix")
            lines += matrix_lines(network.layers[0], network.input_shape)
    except ConvcalcError as err:
        _fail(err, OutputFormat.json if as_json else output)
    text = "\n".join(lines).rstrip()
    if fmt is not OutputFormat.table:
        from .render import Table

        data = {"schema": "convcalc.explain/1", "lines": text.split("\n")}
        table = Table(("line",), frozenset(), tuple((line,) for line in data["lines"]), None, ())
        _show(table, data, fmt, [{"line": line} for line in data["lines"]])
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape

        Console().print(escape(text).replace("#", "[bold magenta]#[/]"), highlight=False)
    else:
        print(text)
