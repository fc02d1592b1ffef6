"""Capturing a PyTorch module's real graph with ``torch.export`` and reading it as a ``Network``.

The module is exported in evaluation mode, non-strict, on an input of zeros
(the export runs it on fake tensors: no real forward pass). Every ATen call
becomes a layer named after the module that made it (``layer1.0.conv1``; a
functional call inside a block is ``layer1.0.add``), with the module
hierarchy as its ``path``. The traced output shape of every layer is kept as
``expect``: the analysis computes its own and fails loudly if they differ.
"""

from __future__ import annotations

import contextlib

from ...engine.errors import ResourceError, SpecError
from ...engine.limits import max_trace_bytes
from ...engine.network import Network
from ...engine.sizes import volume
from .chunks import even_chunks
from .guard import describe, model_label, user_code
from .reading import DROP_PATHS, TRACE_BATCH, read_program


def import_torch():
    """torch, or a usage error saying how to get it."""
    try:
        import torch
    except ImportError:
        raise SpecError("reading a PyTorch model needs PyTorch, which is not installed",
                        hint="install it, e.g. pip install torch (convcalc itself does not need it)",
                        field="model") from None
    return torch


def from_torch(module, input_shape, *, batch: int = 1, dtype: str = "float32") -> Network:
    """A PyTorch module's graph as a ``Network``, for an input of ``input_shape`` per sample.

    >>> import torch
    >>> net = from_torch(torch.nn.Conv2d(3, 8, 3), (3, 32, 32))
    >>> net.layers[0].name                    # a lone module: named after its operation
    'conv2d'
    """
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"expected a torch.nn.Module, got {type(module).__name__}",
                        hint="pass the model instance (or a class or factory with --model)", field="model")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise SpecError(f"input shape {shape!r} must be positive sizes, channels first, without the batch",
                        hint="e.g. (3, 224, 224)", field="input")
    needed = TRACE_BATCH * volume(shape) * 4
    if needed > max_trace_bytes():  # refused before anything is allocated
        raise ResourceError(f"capturing the model needs an example input of {needed:,} bytes for "
                            f"{'x'.join(map(str, shape))}, over the limit of {max_trace_bytes():,}",
                            hint="use a smaller input (shapes scale), or raise CONVCALC_MAX_TRACE_BYTES",
                            field="input")
    label = model_label(module)
    with user_code(f"capturing {label}", hint=_HINT, held=True):
        program = _export(torch, module, shape, label)
    with user_code(f"reading the captured graph of {label}", hint="if the model's attributes did not raise this, "
                   "it is a bug in convcalc: please report it with the model"):
        layers, frozen, outputs, unused, unreturned = read_program(torch, module, program, shape)
    return Network(shape, tuple(layers), batch, dtype, frozenset(frozen), outputs, unused, unreturned)


# what torch.export says when a symbolic size needed a guard it could not prove
_GUARD = "Constraints violated"

_HINT = ("check the input shape (channels first, no batch) and that the model's forward runs on it; "
         "a model whose forward branches on values cannot be captured")


def _mark_drop_paths(torch, module):
    """Hooks that make each stochastic-depth module record an evaluation-mode
    dropout (the identity) at its output, so it becomes a layer: what it does
    is invisible at inference, but autograd saves its noise in training."""
    def mark(_module, _args, output):
        return torch.ops.aten.dropout(output, 0.0, False)

    return [sub.register_forward_hook(mark) for sub in module.modules() if type(sub).__name__ in DROP_PATHS]


def _export(torch, module, shape, label):
    was_training = module.training
    module.eval()
    errors = []
    hooks = _mark_drop_paths(torch, module)
    try:
        # A symbolic batch first: every traced size then says where the batch went (attention moves
        # it, windows merge it); a model that fixes its batch is traced with two samples, then one.
        # A model whose symbolic batch fails only on a guard (a chunk of the batch) is traced again
        # with its chunks written as the equal splits they are.
        attempts = ((TRACE_BATCH, True, False), (TRACE_BATCH, True, True), (TRACE_BATCH, False, False),
                    (1, False, False))
        for trace_batch, dynamic, even in attempts:
            if even and not (errors and _GUARD in errors[-1]):
                continue
            example = torch.zeros((trace_batch, *shape))  # export runs on fake copies of it
            batch = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic else {}
            try:
                with even_chunks(torch) if even else contextlib.nullcontext():
                    program = torch.export.export(module, (example,), strict=False, **batch)
                return program, trace_batch
            except Exception as err:  # noqa: BLE001 - the user's model may raise anything while traced
                errors.append(describe(err))
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    raise SpecError(f"torch.export could not capture {label} for an input of {'x'.join(map(str, shape))}: "
                    f"{errors[min(1, len(errors) - 1)]}", hint=_HINT, field="model")
