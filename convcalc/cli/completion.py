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


# Bash splits words at ':' and '=' too (COMP_WORDBREAKS), so after "conv:" Typer's own script would
# complete an empty word. This one re-splits the line at blanks only, hands Typer the whole token,
# and gives bash back only what follows the token's last ':' or '=' (the part bash replaces).
BASH_SCRIPT = r"""_convcalc_completion() {
    local line="${COMP_LINE:0:$COMP_POINT}"
    local -a words
    IFS=$' \t' read -r -a words <<< "$line"
    [[ -z "$line" || "$line" =~ [[:space:]]$ ]] && words+=("")
    local cword=$(( ${#words[@]} - 1 ))
    local current="${words[cword]}"
    local prefix=""
    [[ "$current" == *[:=]* ]] && prefix="${current%"${current##*[:=]}"}"
    local replies reply
    replies=$( IFS=' '; env COMP_WORDS="${words[*]}" COMP_CWORD=$cword _CONVCALC_COMPLETE=complete_bash $1 )
    COMPREPLY=()
    while IFS= read -r reply; do
        [[ -n "$reply" ]] && COMPREPLY+=("${reply#"$prefix"}")
    done <<< "$replies"
    return 0
}

complete -o default -F _convcalc_completion convcalc
"""


def completion_script(shell: str) -> str:
    """The completion script for ``shell``: Typer's for zsh and fish, convcalc's own for bash."""
    if shell == "bash":
        return BASH_SCRIPT
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="convcalc", complete_var="_CONVCALC_COMPLETE", shell=shell).rstrip() + "\n"


# The options that spell out a convolution, and the arguments they stand for.
