"""A module whose forward holds an operation convcalc cannot cost, read as one not-counted layer."""

from __future__ import annotations

from dataclasses import replace

from ...engine import layers as L


def collapse_opaque_modules(layers, outputs, module):
    """A leaf module with an operation convcalc cannot cost (attention) becomes one not-counted layer,
    named after the module, rather than a run of its internal operations."""
    owners = {}
    for layer in layers:
        if isinstance(layer, L.Opaque) and layer.path:
            owners.setdefault(layer.path[-1], None)  # the module whose forward made the operation
    for owner in owners:
        group = [layer for layer in layers if owner in layer.path]
        names = {layer.name for layer in group}
        read_outside = {ref for layer in layers if layer.name not in names for ref in (layer.inputs or ())}
        ends = [layer for layer in group if layer.name in read_outside or layer.name in outputs]
        if len(ends) != 1:
            continue  # several results leave the module: keep its operations
        end = ends[0]
        inputs = tuple(dict.fromkeys(ref for layer in group for ref in (layer.inputs or ()) if ref not in names))
        sub = module.get_submodule(owner)
        params = sum(p.numel() for p in sub.parameters())
        held = tuple((f"operand{k}", f"{owner}.{n}") for k, (n, _) in enumerate(sub.named_parameters()))
        merged = L.Opaque(type(sub).__name__, end.expect, params, name=owner, inputs=inputs,
                          path=end.path[:end.path.index(owner)], expect=end.expect, weights=held)
        rename = {end.name: owner}
        rebuilt = []
        for layer in layers:
            if layer.name in names:
                if layer is end:
                    rebuilt.append(merged)
                continue
            if layer.inputs and any(ref in rename for ref in layer.inputs):
                layer = replace(layer, inputs=tuple(rename.get(ref, ref) for ref in layer.inputs))
            rebuilt.append(layer)
        layers = rebuilt
        outputs[:] = [rename.get(ref, ref) for ref in outputs]
    return layers
