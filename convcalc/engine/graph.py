"""The wiring of a network: which layers each layer reads, and an order that respects it."""

from __future__ import annotations

import heapq

from .errors import SpecError

INPUT = "input"


def label(layers, source) -> str:
    """How a source is named in reports: its name, ``input``, or ``#n`` for an unnamed layer."""
    if source == INPUT:
        return INPUT
    return layers[source].name or f"#{source + 1}"


# A hint lists this many names at most: a document may name hundreds of
# thousands of layers, and the error stays one line.
HINT_NAMES = 8


def naming_hint(names) -> str:
    """The hint for a name no layer has: a few of the names there are.

    >>> naming_hint(["input", "a", "b"])
    'name one of: input, a, b'
    >>> naming_hint([f"l{i}" for i in range(20)])
    'name one of: l0, l1, l2, l3, l4, l5, l6, l7 (and 12 more)'
    """
    names = list(names)
    if not names:
        return "name a layer first (none is named)"
    more = f" (and {len(names) - HINT_NAMES} more)" if len(names) > HINT_NAMES else ""
    return "name one of: " + ", ".join(names[:HINT_NAMES]) + more


def resolve_sources(layers) -> list[tuple]:
    """For each layer, the indices (or INPUT) of the layers it reads."""
    names: dict[str, int] = {}
    for i, layer in enumerate(layers):
        if layer.name is None:
            continue
        if layer.name == INPUT or layer.name in names:
            reason = "is the network input's name" if layer.name == INPUT else f"is taken by layer {names[layer.name] + 1}"
            raise SpecError(f"the name {layer.name!r} {reason}", hint="give each layer its own name",
                            field="name", layer=i + 1, origin=layer.origin)
        names[layer.name] = i
    sources = []
    for i, layer in enumerate(layers):
        if layer.inputs is None:
            sources.append((i - 1,) if i else (INPUT,))
            continue
        found = []
        for wanted in layer.inputs:
            if wanted == INPUT:
                found.append(INPUT)
            elif isinstance(wanted, int) and 0 <= wanted < len(layers) and wanted != i:
                found.append(wanted)  # an unnamed layer, by position (documents' blocks refer so)
            elif (isinstance(wanted, str) and wanted[:1] == "#" and wanted[1:].isdigit()
                  and 0 < int(wanted[1:]) <= len(layers) and int(wanted[1:]) - 1 != i
                  and layers[int(wanted[1:]) - 1].name is None):
                found.append(int(wanted[1:]) - 1)  # an unnamed layer, as reports label it: #n
            elif wanted in names:
                found.append(names[wanted])
            else:
                raise SpecError(f"from names {str(wanted)[:40]!r}, which no layer is called",
                                hint=naming_hint([INPUT, *names]), field="from", layer=i + 1, origin=layer.origin)
        sources.append(tuple(found))
    return sources


def result_layers(layers, outputs=()) -> set[int]:
    """The layers whose output the network returns: the last one, and those ``outputs`` names.

    >>> from convcalc.engine.layers import Activation
    >>> sorted(result_layers([Activation("ReLU", name="a"), Activation("ReLU"), Activation("ReLU")], ("a",)))
    [0, 2]
    """
    wanted = set(outputs)
    return {i for i, layer in enumerate(layers) if layer.name in wanted} | ({len(layers) - 1} if layers else set())


def dependency_order(layers, sources, outputs=()) -> list[int]:
    """Layers in an order where each comes after what it reads (document order where free).

    Refuses cycles, and layers whose output nothing reads (the last layer is the output, and so
    are the layers named in ``outputs``, a model's further results).
    """
    readers: dict[int, list[int]] = {i: [] for i in range(len(layers))}
    waiting = {}
    for i, srcs in enumerate(sources):
        real = {s for s in srcs if s != INPUT}
        waiting[i] = len(real)
        for s in real:
            readers[s].append(i)
    ready = [i for i, n in waiting.items() if n == 0]  # a heap: the earliest free layer first
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) < len(layers):
        cycle = _a_cycle(sources, set(order))
        shown = " → ".join(label(layers, i) for i in cycle[:8]) + (
            f" → ... ({len(cycle) - 8:,} more)" if len(cycle) > 8 else "") + f" → {label(layers, cycle[0])}"
        first = layers[cycle[0]]
        raise SpecError(f"layers read each other in a cycle: {shown}",
                        hint="a layer may only read layers that do not read it",
                        field="from", layer=cycle[0] + 1, origin=first.origin)
    named = {layer.name for layer in layers}
    for wanted in outputs:
        if wanted not in named:
            raise SpecError(f"outputs names {str(wanted)[:40]!r}, which no layer is called",
                            hint=naming_hint(sorted(n for n in named if n)), field="outputs")
    results = result_layers(layers, outputs)
    for i in range(len(layers)):
        if not readers[i] and i not in results:
            raise SpecError(f"layer {label(layers, i)!r}'s output is never used",
                            hint="read it with from in a later layer, or remove it; the last layer is the output",
                            field="name", layer=i + 1, origin=layers[i].origin)
    return order


def _a_cycle(sources, done: set) -> list[int]:
    """One cycle among the layers that never became ready: each reads another such layer, so
    following those reads from the first of them must come back to a layer already met."""
    start = min(i for i in range(len(sources)) if i not in done)
    seen: dict[int, int] = {}
    path, node = [], start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(s for s in sources[node] if s != INPUT and s not in done)
    return path[seen[node]:]


def reaching(layers, outputs) -> list:
    """The layers whose output reaches one of ``outputs`` (names), in order, with the last of
    ``outputs`` moved last: it is the network's output. Readers drop what a model computes
    but never uses.

    >>> from dataclasses import replace
    >>> from convcalc.engine.layers import Identity
    >>> a, b, c = (replace(Identity(), name=n, inputs=("input",)) for n in "abc")
    >>> [layer.name for layer in reaching([a, b, c], ["c", "a"])]
    ['c', 'a']
    """
    by_name = {layer.name: layer for layer in layers}
    needed, stack = set(), list(outputs)
    while stack:
        ref = stack.pop()
        if ref in needed or ref not in by_name:
            continue
        needed.add(ref)
        stack.extend(by_name[ref].inputs or ())
    last = outputs[-1]
    return [layer for layer in layers if layer.name in needed and layer.name != last] + [by_name[last]]
