"""The arguments and options commands share, each declared once (type, names, help, completion).

Each is an ``Annotated`` type a command's parameter takes, e.g. ``batch: Batch = None``. The
options naming a network (INPUT, LAYER..., -f, --preset, --model, --model-arg, --input,
--batch, --dtype) reach a command together, as one ``NetworkSource`` (see ``cli/source.py``).
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from ..engine.dtypes import DTYPE_BYTES
from ..output.formats import OutputFormat


def _complete_layer(incomplete: str) -> list[str]:
    """Layer kinds for a token being typed; after KIND:, that kind's argument keys."""
    from ..readers.registry import find_kind, token_names

    if ":" not in incomplete:
        return [name for name in token_names() if name.startswith(incomplete.lower())]
    kind = find_kind(incomplete.split(":", 1)[0])
    if kind is None:
        return []
    typed = incomplete.rsplit(",", 1)[-1].split(":")[-1]  # the argument being typed
    done = incomplete[: len(incomplete) - len(typed)]
    return [f"{done}{key}=" for key in kind.fields if key.startswith(typed)]


def _complete_preset(incomplete: str) -> list[str]:
    from ..presets import preset_names

    return [name for name in preset_names() if name.startswith(incomplete)]


def _complete_dtype(incomplete: str) -> list[str]:
    return [name for name in DTYPE_BYTES if name.startswith(incomplete.lower())]


def _complete_optimizer(incomplete: str) -> list[str]:
    return [name for name in ("sgd", "momentum", "adam", "adamw") if name.startswith(incomplete)]


def _complete_device(incomplete: str) -> list[str]:
    from ..engine.devices import DEVICES

    return [name for name in (*DEVICES, "measure") if name.startswith(incomplete.lower())]


# The network a command works on is given the same way everywhere.
Input = Annotated[Optional[str], typer.Argument(
    metavar="INPUT", help="Input shape, channels first without the batch: 3x224x224, 64x16000, 16x8x56x56.",
    show_default=False)]
Layers = Annotated[Optional[List[str]], typer.Argument(
    metavar="LAYER...", help="Layer tokens such as conv:64,k=3,s=2,p=1, bn, relu, maxpool:k=3,s=2.",
    autocompletion=_complete_layer, show_default=False)]
File = Annotated[Optional[str], typer.Option(
    "--file", "-f", metavar="FILE",
    help="Read a network: a JSON or YAML document, print(model) text or an ONNX file (- for stdin).")]
Preset = Annotated[Optional[str], typer.Option(
    "--preset", metavar="NAME", help="A shipped network (see convcalc presets); INPUT, if given, replaces its input "
                                     "shape.", autocompletion=_complete_preset)]
Model = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="MODEL", help="A PyTorch model: MODULE:NAME or FILE.py:NAME, an nn.Module, class or "
                                           "factory (imports and runs that code; needs torch).")]
ModelArg = Annotated[Optional[List[str]], typer.Option(
    "--model-arg", metavar="KEY=VALUE", help="Passed to the model's class or factory (JSON values), repeatable.")]
InputOption = Annotated[Optional[str], typer.Option(
    "--input", "-i", metavar="INPUT", help="The input shape, as INPUT (needed for print(model) text).")]
Batch = Annotated[Optional[int], typer.Option(
    "--batch", "-b", metavar="N", help="Batch size (default: 1, or the document's).")]
Dtype = Annotated[Optional[str], typer.Option(
    "--dtype", metavar="DTYPE", help="Element type: " + ", ".join(DTYPE_BYTES) + " (default: float32, or the "
                                     "document's); executing (run, compare --run) takes float32 or float64.",
    autocompletion=_complete_dtype)]

# How every command prints.
Json = Annotated[bool, typer.Option("--json", help="Print the JSON object (shorthand for --format json).")]
Format = Annotated[Optional[OutputFormat], typer.Option(
    "--format", metavar="FORMAT", help="table (the default), json, ndjson (an object per row), csv, markdown, "
                                       "or mermaid or dot (the network's graph).",
    case_sensitive=False)]

# Memory and time.
Optimizer = Annotated[str, typer.Option(
    "--optimizer", metavar="OPTIMIZER", show_default=False,
    help="Optimizer for the training memory: sgd, momentum, adam (the default) or adamw.",
    autocompletion=_complete_optimizer)]
Device = Annotated[Optional[str], typer.Option(
    "--device", metavar="DEVICE", help="Bound each layer's time on a device: a name such as a100-80gb (see "
                                       "docs/memory-time.md), or measure (this machine, measured first: NumPy matrix products "
                                       "and copies up to 128 MiB, 8 to 10 s on a 2-core machine).",
    autocompletion=_complete_device)]
Peak = Annotated[Optional[str], typer.Option(
    "--peak", metavar="FLOPS", help="Peak throughput for the bound, e.g. 19.5T (FLOP/s); replaces the device's.")]
Bandwidth = Annotated[Optional[str], typer.Option(
    "--bandwidth", metavar="RATE", help="Memory bandwidth for the bound, e.g. 900GB/s; replaces the device's.")]
Tf32Matmul = Annotated[bool, typer.Option(
    "--tf32-matmul", help="Bound float32 matrix products, linear layers, einsum and attention at the device's TF32 "
                          "tensor-core rate, as PyTorch runs them with torch.backends.cuda.matmul.allow_tf32 = True "
                          "(or set_float32_matmul_precision('high')); without it, at FP32, PyTorch's default. "
                          "Convolutions and RNNs take TF32 on Ampere and later either way.")]
