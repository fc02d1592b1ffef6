"""What autograd saves for the backward pass, asked of each layer's kind.

Each kind's ``saved`` gives PyTorch's choice (``tools/autograd/derivatives.yaml``
and the CPU kernels of torch 2.13, in training mode) as a list of items:
``("input", k)`` (the k-th input's storage is saved), ``("output",)`` (the
result's storage), or ``("new", bytes)`` for a tensor only the backward pass
reads (statistics, indices, dropout's noise). Parameters are left out: they are
counted as parameters. None: convcalc does not know the rule.
"""

from __future__ import annotations

from .layers.base import Use

OUTPUT = ("output",)


def saved_by(layer, inputs, output, batch: int, itemsize: int, inputs_grad, trainable: bool):
    """The items ``layer`` saves, given its inputs' and output's per-sample shapes, whether each
    input needs a gradient and whether it has trainable parameters; None if unknown.

    >>> from convcalc.engine.layers import Conv
    >>> saved_by(Conv(8, 3), [(3, 8, 8)], (8, 6, 6), 1, 4, [False], True)
    [('input', 0)]
    """
    return layer.saved(Use(tuple(inputs), output, batch, itemsize, tuple(inputs_grad), trainable))
