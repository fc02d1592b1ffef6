"""What a forward pass computes from the input and returns nowhere is still run by PyTorch: read as a
further output, marked, counted (FlopCounterMode counts it too), never dropped without a word."""

from __future__ import annotations

import pytest

from convcalc import analyse

try:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests that need it skip)
    torch = None


class _Refined(torch.nn.Module if torch else object):
    """RAFT's loop, small: every step refines the estimate and upsamples it with a learned mask; a
    wrapper returns the last step's upsampling only."""

    def __init__(self):
        super().__init__()
        self.step, self.mask = torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.Conv2d(4, 9, 1)

    def forward(self, x):
        results = []
        for _ in range(3):
            x = x + self.step(x)
            results.append(x * self.mask(x).softmax(1).sum(1, keepdim=True))
        return results[-1]


class _Sequence(torch.nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(6, 5, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


@pytest.mark.needs_torch
def test_results_returned_nowhere_are_counted_and_marked():
    from convcalc import from_torch

    torch.manual_seed(0)
    model, shape = _Refined().eval(), (4, 6, 6)
    analysis = analyse(from_torch(model, shape))
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    assert analysis.totals.macs == counter.get_total_flops() // 2
    marked = [r.name for r in analysis.layers if any("returns it nowhere" in note for note in r.notes)]
    assert len(marked) == 2 and analysis.output_shape == shape
    assert [r.name for r in analysis.layers if not r.counted] == []


@pytest.mark.needs_torch
def test_the_unread_states_of_a_recurrent_layer_are_not_more_layers():
    from convcalc import from_torch

    analysis = analyse(from_torch(_Sequence().eval(), (7, 6)))
    assert [r.type for r in analysis.layers] == ["LSTM"]


@pytest.mark.needs_torch
def test_no_gradient_comes_back_from_a_result_returned_nowhere():
    """A training step's loss reads what the model returns: the unreturned upsamplings compute no
    backward (FlopCounterMode over a forward and a backward), but save their tensors in the forward
    pass as autograd does (saved_tensors_hooks)."""
    from convcalc import from_torch
    from convcalc.engine.memory import training_memory
    from convcalc.engine.training import training_macs

    from .torch_nets import saved_by_autograd

    torch.manual_seed(0)
    model, shape = _Refined(), (4, 6, 6)
    x = torch.randn(3, *shape)
    with FlopCounterMode(display=False) as counter:
        model.train()
        model(x).sum().backward()
    analysis = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    cost = training_macs(analysis)
    assert cost.exact and cost.training_macs == counter.get_total_flops() // 2
    memory = training_memory(analysis)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, x)
    # convert writes which results are returned nowhere: the document reads back to the same training step
    from convcalc import load_document
    from convcalc.output.document import network_to_yaml

    again = analyse(load_document(network_to_yaml(analysis.network)), receptive_fields=False)
    assert training_macs(again).training_macs == counter.get_total_flops() // 2
    assert training_memory(again).saved_bytes == memory.saved_bytes
