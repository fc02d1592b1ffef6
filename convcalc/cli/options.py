"""The arguments and options every command shares, defined once, with their completions."""

from __future__ import annotations

import typer


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



# The network a command works on is given the same way everywhere.
INPUT = typer.Argument(
    None, metavar="INPUT", help="Input shape, channels first without the batch: 3x224x224, 64x16000, 16x8x56x56."
)
LAYERS = typer.Argument(
    None, metavar="LAYER...", help="Layer tokens such as conv:64,k=3,s=2,p=1, bn, relu, maxpool:k=3,s=2.",
    autocompletion=_complete_layer,
)
FILE = typer.Option(None, "--file", "-f", help="Read a network: a JSON or YAML document, print(model) text or an ONNX "
                                               "file (- for stdin).")
BATCH = typer.Option(None, "--batch", "-b", help="Batch size (default: 1, or the document's).")
INPUT_OPTION = typer.Option(None, "--input", "-i", help="The input shape, as INPUT (needed for print(model) text).")
PRESET = typer.Option(None, "--preset", help="A shipped network (see convcalc presets); INPUT, if given, replaces "
                                              "its input shape.", autocompletion=_complete_preset)
JSON = typer.Option(False, "--json", help="Print the JSON object (shorthand for --format json).")
FORMAT = typer.Option(None, "--format", metavar="FORMAT",
                      help="table (the default), json, ndjson (an object per row), csv or markdown.",
                      case_sensitive=False)
MODEL = typer.Option(None, "--model", "-m", help="A PyTorch model: MODULE:NAME or FILE.py:NAME, an nn.Module, class or "
                                               "factory (imports and runs that code; needs torch).")
MODEL_ARG = typer.Option(None, "--model-arg", help="KEY=VALUE passed to the model's class or factory (JSON values), "
                                                   "repeatable.")
def _complete_optimizer(incomplete: str) -> list[str]:
    return [name for name in ("sgd", "momentum", "adam", "adamw") if name.startswith(incomplete)]


def _complete_device(incomplete: str) -> list[str]:
    from ..engine.devices import DEVICES

    return [name for name in (*DEVICES, "measure") if name.startswith(incomplete.lower())]


OPTIMIZER = typer.Option("adam", "--optimizer", metavar="OPTIMIZER", show_default=False,
                         help="Optimizer for the training memory: sgd, momentum, adam (the default) or adamw.",
                         autocompletion=_complete_optimizer)
DEVICE = typer.Option(None, "--device", metavar="DEVICE",
                      help="Bound each layer's time on a device: a name such as a100-80gb (see the README), or "
                           "measure (this machine, in a second or two).", autocompletion=_complete_device)
PEAK = typer.Option(None, "--peak", metavar="FLOPS", help="Peak throughput for the bound, e.g. 19.5T (FLOP/s); "
                                                          "replaces the device's.")
BANDWIDTH = typer.Option(None, "--bandwidth", metavar="RATE", help="Memory bandwidth for the bound, e.g. 900GB/s; "
                                                                   "replaces the device's.")
