"""Turning named arguments, from any source, into a layer spec."""

from __future__ import annotations

from difflib import get_close_matches

from ..engine.errors import Origin, SpecError
from ..engine.layers.kind import CLASSES
from .registry import KINDS, Kind, find_kind, token_names


def lookup_kind(name: str, origin: Origin | None = None) -> Kind:
    """The kind for a layer name, or a SpecError listing the known names."""
    kind = find_kind(name)
    if kind is None:
        close = get_close_matches(name.lower(), token_names(), n=4, cutoff=0.5)
        short_names = dict.fromkeys(kind.name for kind in KINDS.values() if kind.rank is None)
        hint = f"did you mean {' or '.join(close)}?" if close else (
            f"use a PyTorch class name or a short name: {', '.join(short_names)}")
        raise SpecError(
            f"unknown layer kind {name!r}",
            hint=hint,
            field="*",
            origin=origin,
        )
    return kind


# Other frameworks' names for PyTorch's arguments (Keras, TensorFlow): named in hints, never accepted.
FOREIGN_KEYS = {"filters": "out_channels", "kernel": "kernel_size", "strides": "stride", "dilation_rate": "dilation",
                "use_bias": "bias", "units": "out_features", "pool_size": "kernel_size", "rate": "p",
                "kernel_shape": "kernel_size", "pads": "padding", "dilations": "dilation", "group": "groups",
                "axis": "dim", "momentum_": "momentum", "epsilon": "eps", "size_divisor": "groups"}


def nearest_argument(kind: Kind, key: str) -> str | None:
    """The argument of ``kind`` a misspelled or foreign ``key`` most likely means, or None.

    >>> from convcalc.readers.registry import find_kind
    >>> nearest_argument(find_kind("conv"), "kernal"), nearest_argument(find_kind("conv"), "filters")
    ('kernel_size', 'out_channels')
    """
    foreign = FOREIGN_KEYS.get(key.lower())
    if foreign is not None and foreign in kind.fields:
        return foreign
    names = list(kind.fields)
    close = get_close_matches(key.lower(), names, n=1, cutoff=0.6)
    if not close:  # kernal -> kernel_size: compare with the names' first words too
        heads = {name.split("_")[0]: name for name in names}
        close = [heads[h] for h in get_close_matches(key.lower(), list(heads), n=1, cutoff=0.6)]
    return close[0] if close else None


def build_layer(kind: Kind, arguments: dict, origin: Origin | None, **wiring):
    """Check each argument for the kind and build the spec.

    ``arguments`` maps keys as written (short or PyTorch names) to values.
    """
    resolved: dict = {}
    for key, value in arguments.items():
        name = kind.canonical(key)
        if name not in kind.fields:
            accepted = ", ".join(kind.fields) or "no arguments"
            nearest = nearest_argument(kind, key)
            # an argument another name of the same class fixes (Dropout2d's variant): name that kind
            named_by = [k.name for k in CLASSES.get(kind.cls, ()) if name in dict(k.fixed)]
            raise SpecError(
                f"{kind.name} has no argument {key!r}" + (f"; did you mean {nearest}?" if nearest else ""),
                hint=f"{kind.name} takes {accepted}" + (
                    f"; {name} is set by the kind's name: {', '.join(named_by)}" if named_by else ""),
                field=name,
                origin=origin,
            )
        if name in resolved:
            raise SpecError(f"{name} is given twice", hint="give each argument once", field=key, origin=origin)
        try:
            resolved[name] = kind.coerce(name, value)
        except SpecError as err:
            err.field = name  # the span is recorded under PyTorch's name, whatever key was written
            raise err.located(origin=origin)
    for name in kind.required:
        if name not in resolved:
            short = {"kernel_size": "k=3", "out_channels": "64", "out_features": "10", "output_size": "1",
                     "padding": "1"}.get(name, f"{name}=...")
            raise SpecError(
                f"{kind.name} needs {name}",
                hint=f"e.g. {kind.name}:{short}" if name not in ("kernel_size",) else f"e.g. {kind.name}:64,{short}",
                field="*",
                origin=origin,
            )
    return kind.make(resolved, origin, **wiring)
