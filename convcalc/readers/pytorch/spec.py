"""Finding the model a user names on the command line: ``package.module:name`` or ``path/to/file.py:name``.

Importing the module runs its code: that is what the user asked for. ``name``
is a module instance, a class, or a factory function; classes and factories
are called with the keyword arguments given (``--model-arg KEY=VALUE``, values
read as JSON where they parse, else as strings).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

from ...engine.errors import SpecError


def parse_model_args(texts) -> dict:
    """``KEY=VALUE`` texts as keyword arguments (JSON values where they parse).

    >>> parse_model_args(["num_classes=10", "weights=null", "norm=batch"])
    {'num_classes': 10, 'weights': None, 'norm': 'batch'}
    """
    arguments = {}
    for text in texts or ():
        key, eq, raw = text.partition("=")
        if not eq or not key.strip().isidentifier():
            raise SpecError(f"--model-arg {text!r} is not KEY=VALUE", hint="e.g. --model-arg num_classes=10",
                            field="model_arg")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        arguments[key.strip()] = value
    return arguments


def load_model(spec: str, arguments: dict | None = None):
    """The ``torch.nn.Module`` that ``spec`` names, built with ``arguments`` if it is a class or factory."""
    from .capture import import_torch

    torch = import_torch()
    where, colon, name = spec.rpartition(":")
    if not colon or not where or not name:
        raise SpecError(f"--model {spec!r} is not MODULE:NAME or FILE.py:NAME",
                        hint="e.g. --model torchvision.models:resnet18 or --model net.py:Net", field="model")
    module = _import(where)
    target = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise SpecError(f"{where} has no {name!r}", hint="name a model instance, class or factory in it",
                            field="model")
        target = getattr(target, part)
    arguments = dict(arguments or {})
    if isinstance(target, torch.nn.Module):
        if arguments:
            raise SpecError(f"{name} is already a model instance; --model-arg has nothing to call",
                            hint="drop --model-arg, or name the class or factory", field="model_arg")
        return target
    if not callable(target):
        raise SpecError(f"{where}:{name} is a {type(target).__name__}, not a model, class or factory",
                        hint="name a torch.nn.Module instance, class or factory", field="model")
    try:
        model = target(**arguments)
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        call = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
        raise SpecError(f"calling {call} failed: {type(err).__name__}: {_first_line(err)}",
                        hint="check the --model-arg names and values", field="model_arg") from None
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"{name}(...) returned a {type(model).__name__}, not a torch.nn.Module",
                        hint="name a model class or a factory returning one", field="model")
    return model


def _import(where: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise SpecError(f"cannot read {where!r}: no such file", hint="check the path", field="model")
        name = f"_convcalc_model_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - the user's code may raise anything
            raise SpecError(f"running {where} failed: {type(err).__name__}: {_first_line(err)}",
                            hint="fix the error in the model's file", field="model") from None
        finally:
            sys.path.pop(0)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as err:
        raise SpecError(f"cannot import {where!r}: {_first_line(err)}",
                        hint="check the module name, and that it is installed", field="model") from None
    except Exception as err:  # noqa: BLE001 - importing runs the package's code, which may raise anything
        raise SpecError(f"importing {where!r} failed: {type(err).__name__}: {_first_line(err)}",
                        hint="the package does not load in this environment (a version mismatch?); fix that first",
                        field="model") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""
