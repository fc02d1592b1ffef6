"""The Typer application, its exit codes and its entry point; the commands register on it."""

from __future__ import annotations

import os
from enum import IntEnum

import typer

from .. import __version__


class ExitCode(IntEnum):
    """What convcalc's exit status means."""

    OK = 0
    REFUSED = 1  # a computation refused (memory, or a disagreement that is a bug), or a --stream line failed
    USAGE = 2  # bad usage, spec or document


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


def run_app() -> None:
    """Entry point of the console script (``convcalc/cli/__init__`` has registered the commands)."""
    if "_CONVCALC_COMPLETE" in os.environ:  # a shell asking for completions: only then load that machinery
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="convcalc")
