"""Where a command's network comes from: the options naming it, as one frozen ``NetworkSource``.

A command that reads a network takes a ``source: NetworkSource`` parameter and is decorated
``@reads_network``: its command line then offers INPUT, LAYER..., -f, --preset, --model,
--model-arg, --input, --batch and --dtype (declared once, in ``cli/options.py``), checked
together, and the command calls ``source.network()``. ``NetworkSource`` itself, and reading a
document's bytes, live in ``api/source.py``, without Typer: ``convcalc.summary`` reads its sources
through them too.
"""

from __future__ import annotations

import functools
import inspect
import typing

# The source itself is the core's (the Python API resolves its sources the same way); it is named
# here too, where the commands have always found it.
from ..api.source import NetworkSource, decode_text, read_bytes
from ..engine.errors import ConvcalcError
from . import options

__all__ = ["NetworkSource", "decode_text", "read_bytes", "reads_network"]


# The command-line parameters a NetworkSource is made of, in the order --help lists them.
_OPTIONS = {"input_shape": options.Input, "layers": options.Layers, "file": options.File,
            "preset": options.Preset, "model": options.Model, "model_args": options.ModelArg,
            "input_option": options.InputOption, "batch": options.Batch, "dtype": options.Dtype}
_PARAMETERS = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
               for name, annotation in _OPTIONS.items()]


def reads_network(command):
    """Give ``command`` the network options in place of its ``source: NetworkSource`` parameter.

    Typer reads the command's signature: this one lists the nine options where ``source`` was, and
    the call gathers them into a ``NetworkSource``. Options that do not go together are reported
    as every command reports errors (exit 2; the JSON error object too with --json or --format json).
    """
    hints = typing.get_type_hints(command, include_extras=True)
    parameters = []
    for parameter in inspect.signature(command).parameters.values():
        if parameter.name == "source":
            parameters.extend(_PARAMETERS)
        else:
            parameters.append(parameter.replace(annotation=hints.get(parameter.name, parameter.annotation),
                                                kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(command)
    def with_source(**values):
        given = {name: values.pop(name) for name in _OPTIONS}
        try:
            source = NetworkSource.from_options(**given)
        except ConvcalcError as err:
            from .common import fail, wants_json

            fail(err, wants_json(values.get("as_json"), values.get("output")))
        return command(source=source, **values)

    with_source.__signature__ = inspect.Signature(parameters)
    with_source.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_source
