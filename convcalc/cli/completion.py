"""convcalc completion: the shell completion scripts, as Typer writes them for this program."""

from __future__ import annotations

import typer

from ..engine.errors import SpecError
from .app import app
from .common import fail

SHELLS = ("bash", "zsh", "fish")


@app.command("completion")
def completion_command(
    shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
) -> None:
    """Print the shell completion script (the files in completions/ are this output).

    Example: convcalc completion bash > ~/.local/share/bash-completion/completions/convcalc
    """
    if shell not in SHELLS:
        fail(SpecError(f"no completion for shell {shell!r}", hint=f"use one of {', '.join(SHELLS)}", field="shell"),
              None)
    print(completion_script(shell), end="")


def completion_script(shell: str) -> str:
    """The completion script for ``shell``, as Typer writes it for this program."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="convcalc", complete_var="_CONVCALC_COMPLETE", shell=shell).rstrip() + "\n"


# The options that spell out a convolution, and the arguments they stand for.
