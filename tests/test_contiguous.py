"""``.contiguous()``: the input itself where it is laid out row by row already, else a copy, as PyTorch
makes it; training memory follows the copy (checked against ``saved_tensors_hooks``)."""

from __future__ import annotations

import pytest

from convcalc import analyse_tokens
from convcalc.engine.memory import inference_memory, view_layers

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None


def test_a_contiguous_input_is_the_input_itself():
    analysis = analyse_tokens("4x6", "relu", "contiguous", batch=2)
    assert 1 in view_layers(analysis)  # (layers numbered from 0)


def test_a_permuted_input_is_copied_row_by_row():
    analysis = analyse_tokens("4x6", "relu", "transpose:1,2", "contiguous", batch=2)
    assert 2 not in view_layers(analysis)
    # by hand, 192 bytes a tensor: the ReLU holds its input and output, the transpose its view of the
    # output, the copy the output and itself
    assert inference_memory(analysis).curve == (2 * 192, 192, 2 * 192)


def test_the_batch_may_sit_elsewhere():
    """A sequence-first tensor (the batch on axis 1) is row by row with the batch there."""
    analysis = analyse_tokens("4x6", "relu", "contiguous:batch_axis=1", batch=2)
    assert 1 not in view_layers(analysis)
    with pytest.raises(Exception, match="batch_axis"):
        analyse_tokens("4x6", "contiguous:batch_axis=5")


class _Copied(torch.nn.Module if torch else object):
    """A transposed tensor made contiguous, read by two linear layers: each folds the one copy as a view."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = torch.nn.Linear(6, 6), torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)

    def forward(self, x):  # (B, 4, 6)
        y = torch.relu(self.a(x)).transpose(1, 2).contiguous()
        return self.b(y) + self.c(y)


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
def test_training_saves_the_copy_once(batch):
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    module = _Copied()
    memory = training_memory(analyse(from_torch(module, (4, 6), batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, 4, 6))


@pytest.mark.needs_torch
def test_an_elementwise_result_is_laid_out_as_torch_lays_it_out():
    """``strides.elementwise`` (TensorIterator's rule) against ReLU's result on random permuted, sliced and
    expanded tensors; axes of one element are not compared (their strides say nothing)."""
    import random

    from convcalc.engine.strides import elementwise

    rng = random.Random(1)
    for _ in range(1000):
        rank = rng.randint(1, 4)
        shape = [rng.choice([1, 2, 3, 4]) for _ in range(rank)]
        steps = [rng.choice([1, 2]) for _ in range(rank)]
        base = torch.randn(*[n * s for n, s in zip(shape, steps)])
        x = base[tuple(slice(0, n * s, s) for n, s in zip(shape, steps))]
        x = x.permute(*rng.sample(range(rank), rank))
        if rng.random() < 0.2:
            x = x.unsqueeze(0).expand(2, *x.shape)
        laid = elementwise(tuple(x.shape), tuple(x.stride()))
        expected = torch.relu(x).stride()
        assert [a for a, n in zip(laid, x.shape) if n != 1] == [b for b, n in zip(expected, x.shape) if n != 1]
