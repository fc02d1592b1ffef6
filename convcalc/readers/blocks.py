"""Blocks: named, parameterised groups of layers written once and used many times.

A document may define ``blocks``; a layer entry ``{"block": NAME, ...}``
instantiates one, with values for its parameters and an optional ``name``,
``from`` and ``repeat``. Inside a block, ``$param`` (also ``$param*4`` or
``$param/2``) stands for a parameter's value, and ``input`` is the
instance's input. Expanded, a block-local name ``x`` becomes
``instance.x``; later layers read the instance by its name (its last
layer). With ``repeat: n`` the instances are ``instance.0`` ...
``instance.<n-1>`` (numbered from ``first``, default 0), each reading the one
before, and the instance's name reads the last of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engine.errors import SpecError
from ..engine.limits import max_document_values, max_layers

_REFERENCE = re.compile(r"\$([A-Za-z_]\w*)(?:\s*([*/])\s*(\d+))?")
_MAX_DEPTH = 16
INSTANCE_KEYS = ("block", "name", "from", "repeat", "first")


@dataclass(frozen=True, slots=True)  # slots: a deep network makes one per layer
class Expanded:
    """One layer object after expansion, where it was written, and the blocks it sits in.

    ``sources`` are names, or ints for the flat position of an unnamed layer.
    """

    entry: dict
    where: str
    path: tuple[str, ...]
    name: str | None
    sources: tuple | None  # None: the layer before it


class _Budget:
    """The values block instances may copy in all: a YAML alias is counted once in the document but
    copied into every instance, so the copies are counted as they are made."""

    def __init__(self) -> None:
        self.left = max_document_values()

    def spend(self, count: int = 1) -> None:
        self.left -= count
        self.check(0)

    def check(self, count: int) -> None:
        """Refuse now if ``count`` more values would not fit."""
        if count > self.left:
            raise SpecError(f"the block instances hold more than {max_document_values():,} values once expanded",
                            hint="raise the limit with CONVCALC_MAX_DOCUMENT_VALUES, or use fewer or smaller "
                            "instances", field="block")


def _values_in(value, sizes: dict) -> int:
    """How many values ``value`` holds once copied (a shared list counted, not walked, again)."""
    if not isinstance(value, (list, dict)):
        return 1
    if id(value) not in sizes:
        items = value.values() if isinstance(value, dict) else value
        sizes[id(value)] = 1 + sum(_values_in(item, sizes) for item in items)
    return sizes[id(value)]


def _substitute(value, params: dict, where: str, budget: _Budget):
    budget.spend()
    if isinstance(value, list):
        return [_substitute(v, params, where, budget) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    match = _REFERENCE.fullmatch(value.strip())
    if not match:
        raise SpecError(f"{where}: {value!r} is not a parameter reference", hint="write $name, $name*4 or $name/2",
                        field=where)
    name, op, number = match.groups()
    if name not in params:
        raise SpecError(f"{where}: ${name} is not a parameter of the block",
                        hint=f"the block's parameters are {', '.join(params) or 'none'}", field=where)
    base = params[name]
    if op is None:
        return base
    if not isinstance(base, int) or isinstance(base, bool):
        raise SpecError(f"{where}: ${name} is {base!r}, which cannot be scaled", hint="scale integer parameters only",
                        field=where)
    if op == "*":
        return base * int(number)
    if int(number) == 0 or base % int(number):
        raise SpecError(f"{where}: ${name}/{number} is not a whole number ({base}/{number})",
                        hint="divide by a number that divides the parameter", field=where)
    return base // int(number)


def _names(value, where: str) -> list:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError(f"{where}.from must be a layer name or a list of names (got {value!r})",
                        hint='e.g. "from": "conv1" or "from": ["a", "b"]', field="from")
    return names


def expand(entries, blocks: dict) -> list[Expanded]:
    """The document's layers with every block instance replaced by its layers."""
    out: list[Expanded] = []
    aliases: dict[str, str] = {}
    _expand(entries, blocks, "layers", (), out, lambda n: n, None, 0, aliases, _Budget())
    # a repeated group's name reads its last instance, as torchvision's layer1 is the whole stage
    resolve = lambda n: aliases.get(n, n) if isinstance(n, str) else n  # noqa: E731
    return [Expanded(e.entry, e.where, e.path, e.name, None if e.sources is None else tuple(map(resolve, e.sources)))
            for e in out]


def _reference(out: list[Expanded]):
    """How to read the layer expanded last: its name, its flat position, or the input."""
    if not out:
        return "input"
    return out[-1].name if out[-1].name is not None else len(out) - 1


def _expand(entries, blocks, where, path, out, rename, first_source, depth, aliases, budget) -> None:
    if not isinstance(entries, list):
        raise SpecError(f"{where} must be a list of layer objects", hint='e.g. "layers": [{"type": "relu"}]',
                        field="layers")
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        source = None
        if isinstance(entry, dict) and "from" in entry:
            source = tuple(rename(n) for n in _names(entry["from"], here))
        elif index == 0 and first_source is not None:
            source = (first_source,)
        if isinstance(entry, dict) and "block" in entry:
            _instantiate(entry, blocks, here, path, out, rename, source, depth, aliases, budget)
            continue
        name = entry.get("name") if isinstance(entry, dict) else None
        if name is not None and not isinstance(name, str):
            raise SpecError(f"{here}.name must be a string (got {name!r})", hint='e.g. "name": "conv1"', field="name")
        out.append(Expanded(entry, here, path, None if name is None else rename(name), source))
        if len(out) > max_layers():
            raise SpecError(f"the network has more than {max_layers():,} layers once its blocks are expanded",
                            hint="raise the limit with CONVCALC_MAX_LAYERS", field="repeat")


def _instantiate(entry, blocks, here, path, out, rename, source, depth, aliases, budget) -> None:
    if depth >= _MAX_DEPTH:
        raise SpecError(f"{here}: blocks nested more than {_MAX_DEPTH} deep (does a block use itself?)",
                        hint="a block may not contain itself", field="block")
    kind = entry["block"]
    if not isinstance(kind, str) or kind not in blocks:
        raise SpecError(f"{here}: unknown block {kind!r}",
                        hint=f"define it under blocks (known: {', '.join(blocks) or 'none'})", field="block")
    block = blocks[kind]
    params = block.get("params", [])
    values = {k: v for k, v in entry.items() if k not in INSTANCE_KEYS}
    unknown = [k for k in values if k not in params]
    missing = [p for p in params if p not in values]
    if unknown or missing:
        problem = f"has no parameter {unknown[0]!r}" if unknown else f"needs {', '.join(missing)}"
        raise SpecError(f"{here}: block {kind!r} {problem}",
                        hint=f"its parameters are {', '.join(params) or 'none'}", field=(unknown or ["block"])[0])
    repeat = entry.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise SpecError(f"{here}: repeat must be a positive integer (got {repeat!r})", hint="e.g. repeat: 2",
                        field="repeat")
    first = entry.get("first", 0)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise SpecError(f"{here}: first must be a non-negative integer (got {first!r})", hint="e.g. first: 1",
                        field="first")
    label = entry.get("name", kind)
    if not isinstance(label, str):
        raise SpecError(f"{here}.name must be a string", hint='e.g. "name": "layer1"', field="name")
    label = rename(label)
    body = block["layers"]
    local = {e["name"] for e in body if isinstance(e, dict) and isinstance(e.get("name"), str)}
    # A plain last layer takes the instance's name; a block that ends in another
    # block reads through an alias to that block's end instead.
    ends_in_layer = bool(body) and isinstance(body[-1], dict) and "block" not in body[-1]
    last_local = body[-1].get("name") if ends_in_layer else None
    start = source[0] if source else _reference(out)
    budget.check(_values_in(body, {}) * repeat)  # refused before copying when the instances cannot fit
    for k in range(first, first + repeat):
        instance = f"{label}.{k}" if repeat > 1 or first else label

        def inner(name, instance=instance, start=start):
            if name == "input":
                return start
            if name == last_local:
                return instance
            return f"{instance}.{name}" if name in local else name

        filled = [{key: _substitute(value, values, f"{here}.{key}", budget) for key, value in layer.items()}
                  if isinstance(layer, dict) else layer for layer in body]
        before = len(out)
        _expand(filled, blocks, f"{here}(block {kind})", (*path, instance), out, inner, start, depth + 1, aliases,
                budget)
        if len(out) == before:
            raise SpecError(f"{here}: block {kind!r} has no layers", hint="give the block a layers list",
                            field="block")
        last = out[-1]
        if ends_in_layer:  # the block's last layer answers to the instance's name
            out[-1] = Expanded(last.entry, last.where, last.path, instance, last.sources)
        else:
            aliases[instance] = last.name
        start = instance
    if repeat > 1 or first:
        aliases[label] = start
