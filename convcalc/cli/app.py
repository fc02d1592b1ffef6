"""The Typer application, its exit codes and its entry point; the commands register on it."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import MutableMapping
from enum import Enum, IntEnum

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
    """The commands, whose usage errors read as convcalc's own (one error line and a hint, exit 2), and
    whose help names value types as Click does (TEXT, INTEGER; nothing for a flag), not as annotations.
    Each command is built when first looked up (``_LazyCommands``); the group's help lists them from
    their names and docstrings alone."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        lazy = _LazyCommands(app.pending, app.pretty_exceptions_short, app.rich_markup_mode)
        lazy.update(self.commands)
        self.commands = lazy
        self._listing = False

    def get_command(self, ctx, cmd_name):
        if self._listing:
            return self.commands.listed(cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_types(command)
        return command

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)  # their names, in the order registered, without building them

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def parse_args(self, ctx, args):
        _plain_types(self)
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


class _LazyCommands(MutableMapping):
    """The group's commands by name, in the order they were registered, each built (its parameters
    read from its function's signature) when first looked up. ``convcalc shape`` builds one command and
    ``convcalc --help`` none: building all ten made half of the start-up convcalc pays over a bare
    Typer app (``benchmarks/startup.py``)."""

    def __init__(self, pending: dict, pretty_exceptions_short: bool, rich_markup_mode) -> None:
        self._pending, self._built = pending, {}
        self._settings = {"pretty_exceptions_short": pretty_exceptions_short, "rich_markup_mode": rich_markup_mode}

    def __getitem__(self, name: str):
        if name not in self._built:
            from typer.main import get_command_from_info

            self._built[name] = get_command_from_info(self._pending[name], **self._settings)
        return self._built[name]

    def __setitem__(self, name: str, command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._built.pop(name, None)
        self._pending.pop(name, None)

    def __iter__(self):
        return iter({**dict.fromkeys(self._pending), **dict.fromkeys(self._built)})

    def __len__(self) -> int:
        return len(self._pending.keys() | self._built.keys())

    def listed(self, name: str):
        """The command as the group's help lists it: the built one, or one made of its name and help
        alone (no parameters) when it has not been built."""
        if name in self._built or name not in self._pending:
            return self._built.get(name)
        info = self._pending[name]
        from inspect import cleandoc, getdoc

        from typer.core import TyperCommand

        return TyperCommand(name=name, help=cleandoc(info.help) if info.help else getdoc(info.callback),
                            short_help=info.short_help, hidden=info.hidden, deprecated=info.deprecated,
                            rich_help_panel=info.rich_help_panel, rich_markup_mode=self._settings["rich_markup_mode"])


class _App(typer.Typer):
    """Typer's app, whose commands are kept aside (``pending``, by name) for the group to build when
    they are used, instead of being built all together each time the command line starts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict = {}

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def keep(function):
            register(function)
            info = self.registered_commands.pop()
            from typer.main import get_command_name

            self.pending[info.name or get_command_name(function.__name__)] = info
            return function

        return keep


# How help names a value's type: Click's words, where Typer would show the annotation (<str>, <list[str]>).
_TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "list[str]": "TEXT", "list[int]": "INTEGER"}


def _plain_types(command) -> None:
    """Give each parameter of ``command`` (its help option too, made when asked for) a type shown in help
    as a metavar reads: TEXT, INTEGER, nothing for a flag (its name says it all); an option's own
    metavar is kept."""
    if getattr(command, "_plain_types", False):
        return
    parameters = command.get_params

    def get_params(ctx):
        found = parameters(ctx)
        for param in found:
            _plain_type(param)
            _plain_values(param)
        return found

    command.get_params = get_params
    command._plain_types = True


def _plain_type(param) -> None:
    if getattr(param, "_plain_type", False) or not hasattr(param, "display_type_rich"):
        return
    shown = param.display_type_rich

    def display(ctx):
        if getattr(param, "is_flag", False):
            return None
        text = shown(ctx)
        if text is None or not text.startswith("<"):
            return text
        word = text.strip("<>")
        return _TYPE_WORDS.get(word, word.upper())

    param.display_type_rich = display
    param._plain_type = True


class _PlainValues:
    """What a parameter's value becomes, without a validator where the conversion is plain: a value not
    given (None), text for a text parameter, digits for an integer one, a choice's name (--format csv).
    Anything else, and every value these refuse, goes to Typer's
    own conversion, built then (it builds a Pydantic validator per parameter: a third of the start-up of a
    command with twenty options, where most are not given)."""

    def __init__(self, param, annotation) -> None:
        from typing import get_args, get_origin

        self.param, self.annotation, self.full = param, annotation, None
        self.texts = get_origin(annotation) is list and get_args(annotation) == (str,)  # List[str] or list[str]
        self.choices = list(annotation) if isinstance(annotation, type) and issubclass(annotation, Enum) else None
        self.case_sensitive = getattr(param.type_descriptor.parameter_info, "case_sensitive", True)

    def coerce(self, value, param, ctx):
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        if type(value) is self.annotation and self.annotation in (str, int) and not (param.multiple or
                                                                                     param.nargs == -1):
            return value
        if self.texts and isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
            return list(value)
        if type(value) is str and self.annotation is int and value.lstrip("-").isascii() and \
                value.lstrip("-").isdigit() and len(value) < 19:
            return int(value)
        if type(value) is str and self.choices is not None:
            fold = (lambda text: text) if self.case_sensitive else str.lower
            for member in self.choices:
                if fold(str(member.value)) == fold(value):
                    return member
        if self.full is None:
            from typer._coercion import build_runtime_param

            self.full = build_runtime_param(self.param.type_descriptor)
        return self.full.coerce(value, param=param, ctx=ctx)


def _plain_values(param) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", False) is not None or descriptor.file_annotation:
        return  # another Typer than the one this was written for, or already converting
    param._runtime_param = _PlainValues(param, descriptor.annotation)


def _usage_failed(err) -> None:
    from ..engine.escape import escape  # the message quotes the command line: shown escaped, as every input

    print(f"error: {escape(' '.join(err.format_message().split()))}", file=sys.stderr)
    print(f"hint: see {err.ctx.command_path if err.ctx is not None else 'convcalc'} --help", file=sys.stderr)
    raise typer.Exit(int(ExitCode.USAGE)) from None


app = _App(
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
    before = _stdout_file()
    try:
        app(prog_name="convcalc")
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
        if code == 1 and before is not None and _stdout_file() not in (before, None):
            code = _quiet_pipe()  # Rich met a closed pipe (help piped to head): it points stdout at devnull, exit 1
    except OSError as err:  # a write that failed for another reason than a closed pipe
        code = _write_failed(err)
    except MemoryError:
        print("error: the machine ran out of memory for this command",
              "hint: use a smaller input or batch, or lower the limits (see docs/limits.md)", sep="\n",
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


def _stdout_file() -> tuple[int, int] | None:
    """Which file standard output is (device, inode), or None where that cannot be told."""
    try:
        found = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return found.st_dev, found.st_ino


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
