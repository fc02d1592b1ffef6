"""``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` read from PyTorch, and the linear
layers around attention: parameters as PyTorch counts them, and what a training step saves as
``saved_tensors_hooks`` records it (torch 2.13, CPU), sequence first or batch first."""

from __future__ import annotations

import itertools

import pytest

from .torch_nets import saved_by_autograd

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None

pytestmark = pytest.mark.needs_torch


def _check(module, shape=(5, 12), batch=2):
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    analysis = analyse(from_torch(module, shape, batch=batch), receptive_fields=False)
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    assert analysis.totals.trainable_params == sum(p.numel() for p in module.parameters() if p.requires_grad)
    memory = training_memory(analysis)
    torch.manual_seed(0)
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, *shape))


class _Layer(torch.nn.Module if torch else object):
    """An encoder layer, or a decoder layer attending over a linear layer's result (its memory)."""

    def __init__(self, decoder, batch_first, norm_first, dropout):
        super().__init__()
        kind = torch.nn.TransformerDecoderLayer if decoder else torch.nn.TransformerEncoderLayer
        self.layer = kind(12, 3, 24, dropout=dropout, batch_first=batch_first, norm_first=norm_first)
        self.memory = torch.nn.Linear(12, 12) if decoder else None
        self.batch_first = batch_first

    def forward(self, x):
        move = (lambda t: t) if self.batch_first else (lambda t: t.transpose(0, 1))
        if self.memory is None:
            return move(self.layer(move(x)))
        return move(self.layer(move(x), move(self.memory(x))))


@pytest.mark.parametrize("decoder, batch_first, norm_first, dropout",
                         list(itertools.product([False, True], [True, False], [True, False], [0.0, 0.1])))
def test_transformer_layers(decoder, batch_first, norm_first, dropout):
    """The decoder's cross-attention projects its query and its memory with parts of one in_proj_weight:
    each a linear layer, the weight counted once."""
    _check(_Layer(decoder, batch_first, norm_first, dropout))


class _SequenceFirst(torch.nn.Module if torch else object):
    """Linear layers on a sequence-first tensor: PyTorch writes their results sequence first, so a linear
    layer reading a ReLU's result folds it as a view."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(12, 24), torch.nn.Linear(24, 12)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.transpose(0, 1)))).transpose(0, 1)


def test_linear_layers_on_a_sequence_first_tensor():
    _check(_SequenceFirst())


def test_a_token_says_where_the_batch_is():
    """The same network written as tokens: the first layer folds a copy, the second a view."""
    from convcalc import analyse_tokens
    from convcalc.engine.memory import training_memory

    memory = training_memory(analyse_tokens("5x12", "linear:24,batch_axis=1", "relu", "linear:12,batch_axis=1",
                                            batch=2))
    torch.manual_seed(0)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(_SequenceFirst(), torch.randn(2, 5, 12))
    assert memory.saved[2] == 0


class _FrozenWeight(torch.nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(12, 12), torch.nn.Linear(12, 12)
        self.b.weight.requires_grad_(False)

    def forward(self, x):
        return self.b(self.a(x) + x)


def test_a_frozen_weight_with_a_trained_bias_saves_no_input():
    _check(_FrozenWeight())


class _SlicedWeight(torch.nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(12, 12))

    def forward(self, x):
        return torch.nn.functional.linear(x, self.w[:6])


def test_a_weight_that_is_part_of_a_parameter_counts_the_parameter():
    _check(_SlicedWeight())
