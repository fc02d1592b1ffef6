"""torch.linalg.vector_norm, torch.clamp and F.normalize (their composition) against PyTorch: the
output shapes and refusals torch gives, the NumPy backend's values against torch's, a model that
normalizes read through ``from_torch`` with nothing uncounted, its MACs as FlopCounterMode counts
them, and what autograd saves for it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, analyse, parse_layer
from convcalc.engine.errors import BatchAxisError
from convcalc.engine.layers import Clamp, VectorNorm
from convcalc.engine.memory import training_memory
from convcalc.verbs.preparers import Runner

from .torch_nets import saved_by_autograd

try:
    import torch
    from torch.nn import functional as TF
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # the tests that check against torch say so (needs_torch)
    pass

pytestmark = pytest.mark.needs_torch
BATCH = 2


def _run(layer, x: np.ndarray) -> np.ndarray:
    return layer.prepare(Runner(np.random.default_rng(0), np.float64), x)(x)


@st.composite
def norm_case(draw):
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    ndim = len(shape) + 1
    dims = draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=2))
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else tuple(dims)
    return shape, draw(st.sampled_from([2.0, 1.0, 0.0, 3.0, 0.5, -1.0])), dim, draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(norm_case())
def test_vector_norm_against_torch(case):
    shape, order, dim, keepdim = case
    x = torch.randn(BATCH, *shape, dtype=torch.float64)
    x[0, ..., 0] = 0  # zeros, where a negative ord's power and ord 0's count differ
    try:
        expected = torch.linalg.vector_norm(x, order, dim, keepdim)
    except (RuntimeError, IndexError):
        expected = None
    layer = VectorNorm(order, dim, keepdim)
    try:
        figures = layer.infer(shape)
    except BatchAxisError:
        return  # the norm would mix the samples: refused on purpose
    except ConvcalcError:
        assert expected is None, (shape, order, dim, keepdim)
        return
    assert expected is not None, (shape, order, dim, keepdim)
    assert figures.output_shape == tuple(expected.shape[1:])
    np.testing.assert_allclose(_run(layer, x.numpy()), expected.numpy(), rtol=1e-12, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([None, -0.5, 0.0, 1e-12]), st.sampled_from([None, 0.5, 6.0, -1.0]))
def test_clamp_against_torch(low, high):
    x = torch.randn(BATCH, 3, 5, dtype=torch.float64)
    x[0, 0, 0] = float("nan")  # torch keeps NaN; so does the backend
    layer = Clamp(low, high)
    if low is None and high is None:  # refused, as PyTorch refuses it
        with pytest.raises(RuntimeError, match="min"):
            torch.clamp(x)
        with pytest.raises(ConvcalcError, match="min"):
            layer.infer((3, 5))
        return
    figures = layer.infer((3, 5))
    expected = torch.clamp(x, low, high)
    assert figures.output_shape == tuple(expected.shape[1:])
    assert figures.flops == 15 * ((low is not None) + (high is not None))
    np.testing.assert_allclose(_run(layer, x.numpy()), expected.numpy())


def test_the_spellings_read_back():
    assert parse_layer("vectornorm:2,-1,keepdim=true") == VectorNorm(2.0, -1, True)
    assert parse_layer("VectorNorm(ord=1.0, dim=(2, 3))") == VectorNorm(1.0, (2, 3))
    assert parse_layer("clamp:min=1e-12") == Clamp(1e-12)
    with pytest.raises(ConvcalcError, match="batch"):
        VectorNorm(2.0, 0).infer((4, 8))
    with pytest.raises(ConvcalcError, match="dim"):
        VectorNorm(2.0, (1, -2)).infer((4, 8))


def _cosine():
    """Swin V2's cosine attention scores: queries and keys normalized, then multiplied."""

    class Cosine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qk = torch.nn.Linear(8, 16)

        def forward(self, x):
            q, k = self.qk(x).chunk(2, dim=-1)
            return TF.normalize(q, dim=-1) @ TF.normalize(k, dim=-1).transpose(-2, -1)

    return Cosine()


def test_f_normalize_is_read_and_counted():
    from convcalc import from_torch

    model = _cosine()
    analysis = analyse(from_torch(model, (5, 8)), receptive_fields=False)
    assert [r for r in analysis.layers if not r.counted] == []
    types = [r.type for r in analysis.layers]
    assert types.count("VectorNorm") == 2 and types.count("Clamp") == 2 and types.count("Div") == 2
    with FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, 5, 8))
    assert analysis.totals.macs * 2 == counter.get_total_flops()
    assert analysis.output_shape == tuple(out.shape[1:])
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    memory = training_memory(analyse(from_torch(model, (5, 8), batch=3), receptive_fields=False))
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(3, 5, 8))
