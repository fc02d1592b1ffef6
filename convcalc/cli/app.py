"""The Typer application, its exit codes and its entry point; the commands register on it."""

from __future__ import annotations

import errno
import os
import sys
from enum import IntEnum

import typer
from typer.core import TyperGroup

from .. import __version__


class ExitCode(IntEnum):
    """What convcalc's exit status means."""

    OK = 0
    REFUSED = 1  # a computation refused (memory, or a disagreement that is a bug), or a --stream line failed
    USAGE = 2  # bad usage, spec or document


# Click's error for a value it cannot convert, an unknown option or command (BadParameter's base;
# found through the public name, whether Typer vendors Click or not).
_UsageError = next(base for base in typer.BadParameter.__mro__ if base.__name__ == "UsageError")


class _Commands(TyperGroup):
    """The commands, whose usage errors read as convcalc's own: one error line and a hint, exit 2."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except _UsageError as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # convcalc alone: the help, as Click shows it
                raise
            _usage_failed(err)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _UsageError as err:
            _usage_failed(err)


def _usage_failed(err) -> None:
    from ..engine.escape import escape  # the message quotes the command line: shown escaped, as every input

    print(f"error: {escape(' '.join(err.format_message().split()))}", file=sys.stderr)
    print(f"hint: see {err.ctx.command_path if err.ctx is not None else 'convcalc'} --help", file=sys.stderr)
    raise typer.Exit(int(ExitCode.USAGE)) from None


app = typer.Typer(
    cls=_Commands,
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
    """Entry point of the console script (``convcalc/cli/__init__`` has registered the commands).

    Output that cannot be written is never reported as success: a closed pipe (``| head``) ends
    quietly with the status ``cat`` gets there (141); any other failed write (a closed stdout, a
    full disk) is an error, exit 1.
    """
    if "_CONVCALC_COMPLETE" in os.environ:  # a shell asking for completions: only then load that machinery
        from typer._completion_classes import completion_init

        completion_init()
    if sys.stdout is None:  # started with its standard output closed
        print("error: cannot write the output: standard output is closed", file=sys.stderr)
        raise SystemExit(int(ExitCode.REFUSED))
    try:
        app(prog_name="convcalc")
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    except OSError as err:  # a write that failed for another reason than a closed pipe
        code = _write_failed(err)
    except MemoryError:
        print("error: the machine ran out of memory for this command",
              "hint: use a smaller input or batch, or lower the limits (see the README's limits)", sep="\n",
              file=sys.stderr)
        code = int(ExitCode.REFUSED)
    except RecursionError:
        print("error: the input nests too deeply to read", "hint: flatten it", sep="\n", file=sys.stderr)
        code = int(ExitCode.USAGE)
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # Typer saw the pipe close while writing
        code = _quiet_pipe()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _quiet_pipe()
    except OSError as err:
        code = _write_failed(err)
    raise SystemExit(code)


def _write_failed(err: OSError) -> int:
    if err.errno == errno.EPIPE:
        return _quiet_pipe()
    print(f"error: cannot write the output: {err.strerror or err}", file=sys.stderr)
    _silence_stdout()
    return int(ExitCode.REFUSED)


def _quiet_pipe() -> int:
    """The reader went away: stop writing, quietly, with the status cat gets there (128 + SIGPIPE)."""
    _silence_stdout()
    return 141


def _silence_stdout() -> None:
    # so the interpreter's last flush finds nowhere to fail
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
