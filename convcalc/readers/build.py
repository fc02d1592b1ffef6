"""Turning named arguments, from any source, into a layer spec."""

from __future__ import annotations

from difflib import get_close_matches

from ..engine.errors import Origin, SpecError
from .registry import KINDS, Kind, canonical_key, find_kind, token_names

SHORT_NAMES = dict.fromkeys(kind.name for kind in KINDS.values() if kind.rank is None)
from .values import coerce


def lookup_kind(name: str, origin: Origin | None = None) -> Kind:
    """The kind for a layer name, or a SpecError listing the known names."""
    kind = find_kind(name)
    if kind is None:
        close = get_close_matches(name.lower(), token_names(), n=4, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else (
            f"use a PyTorch class name or a short name: {', '.join(SHORT_NAMES)}")
        raise SpecError(
            f"unknown layer kind {name!r}",
            hint=hint,
            field="*",
            origin=origin,
        )
    return kind


def build_layer(kind: Kind, arguments: dict, origin: Origin | None, **wiring):
    """Check each argument for the kind and build the spec.

    ``arguments`` maps keys as written (short or PyTorch names) to values.
    """
    resolved: dict = {}
    for key, value in arguments.items():
        name = canonical_key(kind, key)
        if name not in kind.fields:
            accepted = ", ".join(kind.fields) or "no arguments"
            raise SpecError(
                f"{kind.name} has no argument {key!r}",
                hint=f"{kind.name} takes {accepted}",
                field=key,
                origin=origin,
            )
        if name in resolved:
            raise SpecError(f"{name} is given twice", hint="give each argument once", field=key, origin=origin)
        try:
            resolved[name] = coerce(name, value)
        except SpecError as err:
            err.field = key
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
