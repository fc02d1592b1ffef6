"""What ``convcalc.summary`` is given, turned into a ``Network`` and a label: a PyTorch module with
torchinfo's ``input_size`` or ``input_data``, an ONNX model, a document, a preset, layer tokens, or
a ``MODULE:NAME`` model. Everything but a module object goes through ``api/source.py``'s
``NetworkSource``, the route the command line takes, so a source gives here what it gives there.

>>> network, label = resolve(["conv:8,k=3", "relu"], "3x16x16", None, batch=2, dtype=None)
>>> network.input_shape, network.batch, label
((3, 16, 16), 2, '2 layer tokens')
>>> resolve(["relu"], (1, 3, 16, 16), None, batch=None, dtype=None)[0].batch
1
"""

from __future__ import annotations

import json
import operator
import os
import re
import sys
from pathlib import PurePath

from ..engine.dtypes import DTYPE_BYTES
from ..engine.errors import SpecError
from .source import NetworkSource

# File names summary() reads as files whether or not they exist (a missing one is then an error).
_FILE_SUFFIXES = (".onnx", ".json", ".yaml", ".yml", ".txt")
# A model named as --model names it: module.path:attribute.
_MODEL_NAME = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_WORD = re.compile(r"[A-Za-z][\w-]*")
_EXAMPLE = "e.g. input_size=(1, 3, 224, 224): torchinfo's, with the batch first"


def check_batch(batch) -> int | None:
    """``batch`` as given, checked: None, or a positive int."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise SpecError(f"batch must be a positive integer (got {batch!r:.40})", hint="e.g. batch=8", field="batch")
    return batch


def dtype_name(dtype) -> str | None:
    """A dtype's convcalc name: ``"float16"`` for ``"float16"`` and for ``torch.float16``."""
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {name[:40]!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype")
    return name


def resolve(source, input_size, input_data, *, batch: int | None, dtype: str | None):
    """``(network, label)`` for what ``summary`` was given; ``label`` names the source in one line."""
    batch, dtype = check_batch(batch), dtype_name(dtype)
    if input_size is not None and input_data is not None:
        raise SpecError("give input_size or input_data, not both", hint="input_data's shape is its input size",
                        field="input")
    torch = sys.modules.get("torch")  # a module object exists only where torch was imported
    if torch is not None and isinstance(source, torch.nn.Module):
        return _module_network(torch, source, input_size, input_data, batch, dtype), type(source).__name__
    if input_data is not None:
        raise SpecError("input_data goes with a PyTorch module", hint="give the input shape as input_size, "
                        "e.g. input_size='3x224x224'", field="input")
    if isinstance(source, type) and hasattr(source, "forward"):
        raise SpecError(f"summary() takes a model instance, not the class {source.__name__!r}",
                        hint=f"e.g. summary({source.__name__}(), input_size=(1, 3, 224, 224))", field="model")
    shape, batch = _input_size(input_size, batch)
    given = None if shape is None else "x".join(map(str, shape))
    if isinstance(source, (list, tuple)) and all(isinstance(token, str) for token in source):
        if given is None:
            raise SpecError("layer tokens carry no input shape", hint="give it, e.g. summary(['conv:64,k=3', "
                            "'relu'], '3x224x224') or input_size=(1, 3, 224, 224)", field="input")
        net = NetworkSource(given, tuple(source), batch=batch, dtype=dtype).network()
        return net, f"{len(source)} layer token{'s' * (len(source) != 1)}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        named = NetworkSource(given, batch=batch, dtype=dtype)
        data = bytes(source)
        return named.document_network(data, "the bytes"), "ONNX model" if data[:1] == b"\x08" else "document"
    if isinstance(source, dict):
        try:
            text = json.dumps(source)
        except (TypeError, ValueError) as err:
            raise SpecError(f"the document is not plain data: {err}", hint="use dicts, lists, strings and numbers",
                            field="document") from None
        return NetworkSource(given, batch=batch, dtype=dtype).document_network(text.encode(), "the document"), \
            "document"
    if isinstance(source, PurePath) or (isinstance(source, str) and _names_a_file(source)):
        path = os.fspath(source)
        return NetworkSource(given, file=path, batch=batch, dtype=dtype).network(), path
    if isinstance(source, str):
        from ..presets import preset_names

        if source in preset_names() or _WORD.fullmatch(source):  # one word: a preset, or an error naming them
            return NetworkSource(given, preset=source, batch=batch, dtype=dtype).network(), source
        if _MODEL_NAME.fullmatch(source):
            return NetworkSource(given, model=source, batch=batch, dtype=dtype).network(), source
        named = NetworkSource(given, batch=batch, dtype=dtype)
        return named.document_network(source.encode("utf-8", "surrogatepass"), "the document"), "document"
    raise SpecError(f"summary() cannot read a {type(source).__name__}",
                    hint="give a torch.nn.Module, an .onnx path or its bytes, a YAML or JSON path, text or dict, a "
                    "preset name such as 'resnet18', or a list of layer tokens such as ['conv:64,k=3', 'relu']",
                    field="model")


def _names_a_file(text: str) -> bool:
    """Whether a string is a path: one line, not a JSON or YAML flow document, and a known suffix, a
    directory in it, or an existing file (so a mistyped path is "cannot read", not a bad document)."""
    if "\n" in text or text.lstrip().startswith(("{", "[")):
        return False
    return text.lower().endswith(_FILE_SUFFIXES) or "/" in text or os.sep in text or os.path.isfile(text)


def _input_size(size, batch: int | None) -> tuple[tuple[int, ...] | None, int | None]:
    """The per-sample shape and the batch of ``input_size``: a string is the command line's INPUT
    (per sample, ``"3x224x224"``); a sequence of ints is torchinfo's, the batch first."""
    if size is None or isinstance(size, str):
        if size is None:
            return None, batch
        from ..readers import parse_shape

        return parse_shape(size), batch
    sizes = _one_input(size, "input_size")
    if len(sizes) < 2:
        raise SpecError(f"input_size {sizes!r:.60} has {len(sizes)} dimension{'s' * (len(sizes) != 1)}: it "
                        "includes the batch, then the channels and the rest", hint=_EXAMPLE, field="input")
    if batch is not None and batch != sizes[0]:
        raise SpecError(f"input_size starts with a batch of {sizes[0]} and batch is {batch}",
                        hint="give the batch once (input_size's first size)", field="batch")
    return sizes[1:], sizes[0]


def _one_input(size, what: str) -> tuple[int, ...]:
    """The sizes of the one input ``size`` describes (a list of one input's sizes is that input)."""
    if not _sequence(size):
        raise SpecError(f"{what} must be a tuple of sizes, got {type(size).__name__}", hint=_EXAMPLE, field="input")
    size = tuple(size)  # a tuple, list, torch.Size or NumPy array
    if size and all(_sequence(item) for item in size):
        if len(size) > 1:
            raise SpecError(f"{what} gives {len(size)} inputs: convcalc reads models of one input",
                            hint="give one input's size, e.g. (1, 3, 224, 224)", field="input")
        size = size[0]
    try:  # NumPy's integers too, as operator.index takes them; never a bool or a float
        sizes = tuple(operator.index(n) for n in size if not isinstance(n, bool))
    except TypeError:
        sizes = ()
    if len(sizes) != len(size) or not all(n >= 1 for n in sizes):
        raise SpecError(f"{what} {tuple(size)!r:.60} must be positive integers", hint=_EXAMPLE, field="input")
    return sizes


def _sequence(value) -> bool:
    return hasattr(value, "__iter__") and hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict, set))


def _module_network(torch, module, input_size, input_data, batch, dtype):
    """A module's network for torchinfo's ``input_size`` (or the command line's "3x224x224"), or for
    ``input_data``'s shape and dtype."""
    from ..readers.pytorch import from_torch

    if isinstance(input_size, torch.Tensor):
        raise SpecError("input_size is a tensor", hint="give it as input_data=, or give its shape as input_size",
                        field="input")
    if input_data is not None:
        if isinstance(input_data, (list, tuple)) and len(input_data) == 1:
            input_data = input_data[0]
        if isinstance(input_data, (list, tuple, dict)):
            raise SpecError(f"input_data gives {len(input_data)} inputs: convcalc reads models of one input",
                            hint="give one tensor", field="input")
        if not isinstance(input_data, torch.Tensor):
            raise SpecError(f"input_data must be a tensor, got {type(input_data).__name__}",
                            hint="e.g. input_data=torch.randn(1, 3, 224, 224)", field="input")
        given_dtype = dtype_name(input_data.dtype) if input_data.is_floating_point() else None
        if dtype is not None and given_dtype is not None and dtype != given_dtype:
            raise SpecError(f"input_data is {given_dtype} and dtype is {dtype}", hint="give one of them",
                            field="dtype")
        input_size, dtype = tuple(input_data.shape), dtype or given_dtype
    if input_size is None:
        raise SpecError("a PyTorch model carries no input size", hint=_EXAMPLE + ", or input_data=a tensor",
                        field="input")
    shape, batch = _input_size(input_size, batch)
    if not isinstance(input_size, str):
        _check_rank(torch, module, (batch, *shape))
    return from_torch(module, shape, batch=batch or 1, dtype=dtype or "float32")


def _check_rank(torch, module, sizes: tuple[int, ...]) -> None:
    """A model whose first layer is a convolution or a batch norm takes its rank of input, the batch
    counted: say so before capturing, where the error would come from deep inside PyTorch."""
    first = next((m for m in module.modules() if not next(m.children(), None)), None)
    nn = torch.nn
    if isinstance(first, nn.modules.conv._ConvNd):
        rank = len(first.kernel_size) + 2
    elif isinstance(first, nn.modules.batchnorm._BatchNorm) and type(first).__name__[-2:] in ("1d", "2d", "3d"):
        rank = int(type(first).__name__[-2]) + 2
    else:
        return
    if len(sizes) != rank and not (rank == 3 and len(sizes) == 2 and type(first).__name__ == "BatchNorm1d"):
        names = ("batch", "channels", *("length",) * (rank == 3), *("height", "width") * (rank == 4),
                 *("depth", "height", "width") * (rank == 5))
        forgot = len(sizes) == rank - 1  # the per-sample shape, as the command line takes it
        raise SpecError(f"input_size {sizes!r:.60} has {len(sizes)} dimensions; the model's first layer, "
                        f"{type(first).__name__}, takes {rank} ({', '.join(names)})",
                        hint=f"torchinfo's input_size includes the batch: e.g. {(1, *sizes)}" if forgot else _EXAMPLE,
                        field="input")
