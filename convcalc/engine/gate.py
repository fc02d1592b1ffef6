"""The one gate every network passes before analysis, whatever reader built it.

Tokens, constructor text, documents and blocks, ``print(model)`` text, ONNX files,
PyTorch captures, presets and stream lines all end as a ``Network``; each reader
checks what it reads, but some build layers straight from a file's numbers. Here
every number is checked the same way: the input's sizes and the batch are
positive integers below 2^62, and every argument of every layer passes its kind's
rule (integers within PyTorch's 64 bits, finite floats, the words it accepts).
"""

from __future__ import annotations

from .dtypes import DTYPE_BYTES
from .errors import ConvcalcError, SpecError
from .layers.kind import arguments_of, rule_of
from .layers.rules import check_magnitudes, clip
from .limits import MAX_INTEGER


def check_count(value, name: str, *, low: int = 1) -> int:
    """A whole number from ``low`` to 2^62 (a size, the batch), or a SpecError naming ``name``.

    >>> check_count(8, "batch")
    8
    >>> check_count(10**30, "batch")
    Traceback (most recent call last):
    ...
    convcalc.engine.errors.SpecError: batch=1000000000000000000000000000000 is out of range: convcalc's sizes are below 2^62
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name}={clip(repr(value), 40)} is not a whole number", hint=f"give {name} as an integer",
                        field=name)
    if value > MAX_INTEGER:
        raise SpecError(f"{name}={clip(str(value), 40)} is out of range: convcalc's sizes are below 2^62",
                        hint=f"give a smaller {name}", field=name)
    if value < low:
        raise SpecError(f"{name}={value} must be at least {low}", hint=f"give a {name} of at least {low}",
                        field=name)
    return value


def check_network(network) -> None:
    """Refuse a network any of whose numbers no reader should have let through.

    >>> from convcalc.engine.network import Network
    >>> from convcalc.engine.layers import Activation
    >>> check_network(Network((3, 8, 8), (Activation("LeakyReLU", negative_slope=float("nan")),)))
    Traceback (most recent call last):
    ...
    convcalc.engine.errors.SpecError: negative_slope=nan is not a finite number
    """
    if not isinstance(network.input_shape, tuple) or not network.input_shape:
        raise SpecError("the input shape is empty", hint="give channels first, e.g. 3x224x224", field="input")
    for size in network.input_shape:
        check_count(size, "input")
    check_count(network.batch, "batch")
    if network.dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {clip(repr(network.dtype), 40)}",
                        hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype")
    checked: set = set()
    for index, layer in enumerate(network.layers, start=1):
        try:
            if layer in checked:  # layers are immutable values: a repeated one is checked once
                continue
            checked.add(layer)
        except TypeError:  # an unhashable value in a layer: checked below, every time
            pass
        try:
            check_layer(layer)
        except ConvcalcError as err:
            raise err.located(layer=index, origin=layer.origin) from None


def check_layer(layer) -> None:
    """Every argument of ``layer`` by its kind's rule (internal fields: their magnitudes)."""
    for name, declared in arguments_of(type(layer)).items():
        value = getattr(layer, name)
        check_magnitudes(name, value)
        if declared.metadata.get("internal"):
            continue
        try:
            rule = rule_of(type(layer), name)
        except TypeError:  # a field with no rule of its own (a reader's internal value)
            continue
        rule(name, value)
