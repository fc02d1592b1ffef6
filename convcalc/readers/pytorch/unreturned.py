"""Results a forward pass computes from the input and returns nowhere."""

from __future__ import annotations

from dataclasses import replace

from ...engine.graph import reaching

REMARK = ("computed from the input by the forward pass, which returns it nowhere: counted, as PyTorch runs it",)


def unreturned(layers, outputs, secondary=frozenset()):
    """The layers, and the names of the results a forward pass computes from the input and returns
    nowhere (RAFT's upsampling of every estimate but the one a wrapper returns): PyTorch runs them, so
    they are read as further outputs, marked, rather than dropped. The ``secondary`` results of an
    operation read as a layer (an LSTM's last states), where nothing reads them, are left out: they are
    that operation's work, already counted; so are the layers an in-place write adds for the tensor it
    writes, where nothing reads that tensor again."""
    needed = {layer.name for layer in reaching(layers, outputs)}
    dead = {layer.name for layer in layers if layer.name not in needed and not layer.once}
    while True:
        read = {ref for layer in layers for ref in (layer.inputs or ())}
        idle = {layer.name for layer in layers if layer.name in dead and layer.name not in read and
                layer.name in secondary}
        if not idle:
            break
        dead -= idle
        layers = [layer for layer in layers if layer.name not in idle]
    read = {ref for layer in layers for ref in (layer.inputs or ())}
    ends = [layer.name for layer in layers if layer.name in dead and layer.name not in read]
    marked = [replace(layer, remark=layer.remark + REMARK) if layer.name in ends else layer for layer in layers]
    return marked, ends
