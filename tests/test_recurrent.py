"""LSTM, GRU and RNN against PyTorch: output shapes and parameters as the modules have them, MACs as
FlopCounterMode counts an unrolled step-by-step computation with the module's own weights (half its
total), and the NumPy backend's output against the module's, with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from convcalc.engine.layers import Recurrent
from convcalc.functional import recurrent

pytestmark = pytest.mark.needs_torch  # every test here checks against torch

try:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests skip)
    pass

CASES = [
    ("LSTM", dict(num_layers=1)), ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, proj_size=3, bias=False)), ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(bias=False)), ("RNN", dict(num_layers=3, nonlinearity="relu")), ("RNN", dict(bidirectional=True)),
]


def _module(cell, options):
    return getattr(torch.nn, cell)(6, 5, batch_first=True, **options).double()


def _weights(module, cell, options):
    layers = []
    for layer in range(module.num_layers):
        directions = []
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            get = lambda name: getattr(module, f"{name}_l{layer}{suffix}", None)  # noqa: E731
            directions.append(tuple(None if get(n) is None else get(n).detach().numpy()
                                    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")))
        layers.append(directions)
    return layers


def _unrolled_flops(module, x, weights) -> int:
    """The products of every step, as matrix products FlopCounterMode sees."""
    with FlopCounterMode(display=False) as counter:
        for layer in weights:
            for w_ih, w_hh, _b_ih, _b_hh, w_hr in layer:
                h = torch.zeros(x.shape[0], w_hh.shape[1], dtype=torch.float64)
                for _ in range(x.shape[1]):
                    step_in = torch.zeros(x.shape[0], w_ih.shape[1], dtype=torch.float64)
                    torch.mm(step_in, torch.from_numpy(w_ih).T) + torch.mm(h, torch.from_numpy(w_hh).T)
                    if w_hr is not None:
                        torch.mm(torch.zeros(x.shape[0], w_hr.shape[1], dtype=torch.float64),
                                 torch.from_numpy(w_hr).T)
    return counter.get_total_flops()


@pytest.mark.parametrize("cell, options", CASES)
def test_against_the_module(cell, options):
    module = _module(cell, options)
    x = torch.randn(2, 7, 6, dtype=torch.float64)
    expected, _ = module(x)
    figures = Recurrent(cell, 5, input_size=6, **options).infer((7, 6))
    assert figures.output_shape == tuple(expected.shape[1:])
    assert figures.params == sum(p.numel() for p in module.parameters())
    weights = _weights(module, cell, options)
    assert 2 * figures.macs == _unrolled_flops(module, x, weights) // 2  # the batch of 2, 2 FLOPs per MAC
    got = recurrent(x.numpy(), weights, cell, options.get("nonlinearity", "tanh"))
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_a_sequence_is_required():
    from convcalc import ConvcalcError

    with pytest.raises(ConvcalcError, match="time steps"):
        Recurrent("LSTM", 8).infer((3, 8, 8))
    with pytest.raises(ConvcalcError, match="proj_size"):
        Recurrent("LSTM", 8, proj_size=8).infer((3, 8))
