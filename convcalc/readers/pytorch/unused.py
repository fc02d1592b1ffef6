"""The parameters of a model that no layer of its capture holds, grouped by module."""

from __future__ import annotations


def unused_parameters(module, layers, read: set) -> tuple[tuple[str, int, int, bool], ...]:
    """The model's parameters no layer holds, by the largest module holding only such parameters:
    (module, parameters, trainable, whether the forward pass reads them)."""
    params = dict(module.named_parameters())  # tied parameters once, under their first name
    first = {id(p): name for name, p in params.items()}
    canonical = {name: first[id(p)] for name, p in module.named_parameters(remove_duplicate=False)}
    held = {canonical.get(name, name) for layer in layers for _, name in (layer.weights or ())}
    read = {canonical.get(name, name) for name in read}
    missing = [name for name in params if name not in held]
    # per module: how many of its parameters there are, and how many no layer holds (one pass each)
    total: dict[str, int] = {}
    absent: dict[str, int] = {}
    for name in params:
        for prefix in _modules_of(name):
            total[prefix] = total.get(prefix, 0) + 1
            absent[prefix] = absent.get(prefix, 0) + (name not in held)
    groups: dict[tuple[str, bool], list[str]] = {}
    for name in missing:
        key = next((p for p in _modules_of(name) if absent[p] == total[p]), name)  # the largest such module
        groups.setdefault((key, name in read), []).append(name)
    return tuple((key, sum(params[n].numel() for n in names), sum(params[n].numel() for n in names
                                                                  if params[n].requires_grad), was_read)
                 for (key, was_read), names in groups.items())


def _modules_of(name: str) -> list[str]:
    """The modules a parameter sits in, outermost first: ``a``, ``a.b`` for ``a.b.weight``."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]
