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
from .guard import MODEL_FILE_PREFIX, describe, user_code


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
    """The ``torch.nn.Module`` that ``spec`` names, built with ``arguments`` if it is a class or factory.

    Whatever the model's code raises, prints or logs while it is imported and built is contained
    (``guard.user_code``): a failure is one ``SpecError`` naming the model.
    """
    from .capture import import_torch

    torch = import_torch()
    where, colon, name = spec.rpartition(":")
    if not colon or not where or not name:
        raise SpecError(f"--model {spec!r} is not MODULE:NAME or FILE.py:NAME",
                        hint="e.g. --model torchvision.models:resnet18 or --model net.py:Net", field="model")
    module = _import(where)
    arguments = dict(arguments or {})
    with user_code(f"looking up {name!r} in {where}", hint="name a model instance, class or factory in it"):
        target = module
        for part in name.split("."):
            target = getattr(target, part, _MISSING)
            if target is _MISSING:
                raise SpecError(f"{where} has no {name!r}", hint="name a model instance, class or factory in it",
                                field="model")
        is_model = isinstance(target, torch.nn.Module)
        if not is_model and not callable(target):
            raise SpecError(f"{where}:{name} is a {type(target).__name__}, not a model, class or factory",
                            hint="name a torch.nn.Module instance, class or factory", field="model")
    if is_model:
        if arguments:
            raise SpecError(f"{name} is already a model instance; --model-arg has nothing to call",
                            hint="drop --model-arg, or name the class or factory", field="model_arg")
        return target
    call = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    with user_code(f"calling {call}", hint="check the --model-arg names and values", field="model_arg"):
        model = target(**arguments)
        is_model = isinstance(model, torch.nn.Module)
    if not is_model:
        raise SpecError(f"{name}(...) returned a {type(model).__name__}, not a torch.nn.Module",
                        hint="name a model class or a factory returning one", field="model")
    return model


_MISSING = object()
_FIX = "fix the error in the model's code"


def _import(where: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise SpecError(f"cannot read {where!r}: no such file", hint="check the path", field="model")
        name = f"{MODEL_FILE_PREFIX}{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        folder = str(path.resolve().parent)
        sys.path.insert(0, folder)  # so the file can import its neighbours
        try:
            with user_code(f"running {where}", hint=_FIX):
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            if folder in sys.path:
                sys.path.remove(folder)
        return module
    with user_code(f"importing {where!r}", hint="the module does not load in this environment: fix its error "
                                                 "(or a version mismatch in what it imports) first"):
        try:
            return importlib.import_module(where)
        except SyntaxError as err:
            raise SpecError(f"cannot import {where!r}: {describe(err)}", hint=_FIX, field="model") from None
        except ImportError as err:
            raise SpecError(f"cannot import {where!r}: {describe(err).partition(': ')[2] or describe(err)}",
                            hint="check the module name, and that it is installed", field="model") from None
