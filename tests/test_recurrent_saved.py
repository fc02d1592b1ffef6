"""What LSTM, GRU and RNN layers save for the backward pass, against what autograd saves
(``saved_tensors_hooks``, torch 2.13 on the CPU): the layer's input folded steps first (a view, or a
copy for each direction), every step's states and gates, the layers' joined outputs, dropout's noise;
for a float32 LSTM, what oneDNN keeps (its workspace among it)."""

from __future__ import annotations

import pytest

from .torch_nets import saved_by_autograd

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None

pytestmark = [pytest.mark.needs_torch, pytest.mark.filterwarnings("ignore:LSTM with projections")]


class _Sequence(torch.nn.Module if torch else object):
    """A recurrent layer after ``before`` (nothing, a ReLU whose output autograd saves too, a linear layer),
    reading a batch-first input or, ``batch_first=False``, the input's steps moved first (a transposed view,
    or a ReLU's result on it, which PyTorch lays out as the view it reads)."""

    def __init__(self, cell, options, before, batch_first, frozen=False):
        super().__init__()
        self.cell = getattr(torch.nn, cell)(8, 16, batch_first=batch_first, **options)
        self.before, self.batch_first = before, batch_first
        self.linear = torch.nn.Linear(8, 8)
        for p in self.cell.parameters() if frozen else ():
            p.requires_grad_(False)

    def forward(self, x):  # (B, T, 8)
        if self.before == "relu":
            x = torch.relu(x)
        elif self.before == "linear":
            x = self.linear(x)
        if not self.batch_first:
            x = x.transpose(0, 1)
            if self.before == "relu moved":
                x = torch.relu(x)
        return self.cell(x)[0]


def _saved(module, steps, batch):
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    memory = training_memory(analyse(from_torch(module, (steps, 8), batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    return memory, saved_by_autograd(module, torch.randn(batch, steps, 8))


CELLS = [("GRU", {}), ("GRU", dict(bias=False)), ("GRU", dict(num_layers=2, bidirectional=True, dropout=0.2)),
         ("RNN", {}), ("RNN", dict(nonlinearity="relu", num_layers=3)), ("RNN", dict(bidirectional=True)),
         ("RNN", dict(num_layers=2, dropout=0.5)),
         # oneDNN's LSTM, and the native steps PyTorch runs for an LSTM with a projection
         ("LSTM", {}), ("LSTM", dict(bias=False)), ("LSTM", dict(num_layers=3)),
         ("LSTM", dict(num_layers=2, bidirectional=True)), ("LSTM", dict(num_layers=2, bidirectional=True, dropout=0.2)),
         ("LSTM", dict(proj_size=5)), ("LSTM", dict(proj_size=5, num_layers=2, bidirectional=True, dropout=0.3))]


@pytest.mark.parametrize("steps, batch", [(5, 3), (1, 2), (4, 1)])
@pytest.mark.parametrize("before, batch_first", [("nothing", True), ("relu", True), ("linear", False),
                                                 ("relu moved", False), ("relu", False)])
@pytest.mark.parametrize("cell, options", CELLS)
def test_saved_bytes_equal_autograds(cell, options, before, batch_first, steps, batch):
    """Where the batch was moved to axis 1 and both directions of PyTorch's own steps fold the input, it may
    be one steps-first tensor (made contiguous) or a copy for each: convcalc does not call that exact."""
    memory, expected = _saved(_Sequence(cell, options, before, batch_first), steps, batch)
    native = cell != "LSTM" or options.get("proj_size")
    assert memory.exact == (batch_first or not options.get("bidirectional") or steps == 1 or batch == 1
                            or not native)
    assert memory.saved_bytes == expected


@pytest.mark.parametrize("cell, options", [*CELLS[2:4], CELLS[-1]])
def test_frozen_weights_save_no_product_inputs(cell, options):
    """With the layer's weights frozen and its input needing a gradient (a trained linear layer before it),
    no product saves its input: only the gates' and activations' results remain."""
    memory, expected = _saved(_Sequence(cell, options, "linear", True, frozen=True), 5, 3)
    assert memory.exact and memory.saved_bytes == expected


class _Heads(torch.nn.Module if torch else object):
    """Two linear heads on a recurrent layer's output, one through a ReLU: the output is laid out steps first
    (a batch-first one is a view), the ReLU's result too, so each head folds a copy."""

    def __init__(self, cell, batch_first):
        super().__init__()
        self.cell, self.batch_first = getattr(torch.nn, cell)(8, 16, batch_first=batch_first), batch_first
        self.a, self.b = torch.nn.Linear(16, 4), torch.nn.Linear(16, 4)

    def forward(self, x):
        y = self.cell(x if self.batch_first else x.transpose(0, 1))[0]
        y = y if self.batch_first else y.transpose(0, 1)
        return self.a(y) + self.b(torch.relu(y))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_the_output_is_laid_out_steps_first(cell, batch_first):
    memory, expected = _saved(_Heads(cell, batch_first), 5, 3)
    assert memory.exact and memory.saved_bytes == expected


@pytest.mark.parametrize("options", [{}, dict(num_layers=2, bidirectional=True, dropout=0.2)])
def test_a_float64_lstm_runs_the_native_steps(options):
    """oneDNN takes float32 (and bfloat16) only: in float64 PyTorch steps through the cells itself."""
    import dataclasses

    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = _Sequence("LSTM", options, "nothing", True)
    network = dataclasses.replace(from_torch(module, (5, 8), batch=3), dtype="float64")
    memory = training_memory(analyse(network, receptive_fields=False))
    torch.manual_seed(0)
    expected = saved_by_autograd(module.double(), torch.randn(3, 5, 8, dtype=torch.float64))
    assert memory.exact and memory.saved_bytes == expected


def test_half_precision_is_not_called_exact():
    """Which path a half-precision LSTM takes depends on the processor (oneDNN's bfloat16 check)."""
    import dataclasses

    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    network = dataclasses.replace(from_torch(_Sequence("LSTM", {}, "nothing", True), (5, 8), batch=3),
                                  dtype="bfloat16")
    assert not training_memory(analyse(network, receptive_fields=False)).exact


@pytest.mark.parametrize("steps, batch, features, hidden", [(5, 3, 8, 16), (1, 1, 1, 1), (7, 5, 3, 33),
                                                           (20, 8, 32, 64), (3, 2, 255, 256), (2, 33, 600, 192)])
def test_onednn_workspace_is_the_tensor_autograd_saves(steps, batch, features, hidden):
    """The one byte tensor oneDNN's LSTM saves is its workspace, as large as convcalc computes it."""
    from convcalc.engine.layers.recurrent import onednn_workspace

    module = torch.nn.LSTM(features, hidden).train()
    sizes = []

    def pack(tensor):
        if tensor.dtype == torch.uint8:
            sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(torch.randn(steps, batch, features))
    assert sizes == [onednn_workspace(steps, batch, features, hidden, 4)]


class _Crnn(torch.nn.Module if torch else object):
    """A convolution's output made contiguous steps first (a CRNN's idiom) for a bidirectional layer."""

    def __init__(self, cell):
        super().__init__()
        self.conv, self.cell = torch.nn.Conv1d(8, 8, 3, padding=1), getattr(torch.nn, cell)(8, 16, bidirectional=True)

    def forward(self, x):  # (B, 8, T)
        return self.cell(self.conv(x).permute(2, 0, 1).contiguous())[0]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("cell", ["GRU", "RNN", "LSTM"])
def test_a_sequence_made_contiguous_steps_first(cell, batch):
    """``.contiguous()`` copies the permuted sequence steps first, once: both directions fold that copy."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = _Crnn(cell)
    memory = training_memory(analyse(from_torch(module, (8, 6), batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, 8, 6))


@pytest.mark.parametrize("frozen", ["weight_hh_l0", "weight_ih_l0", "bias_hh_l1", "weight_ih_l1_reverse", "all"])
@pytest.mark.parametrize("cell", ["GRU", "LSTM", "RNN"])
def test_frozen_tensors_count_by_pytorchs_names(cell, frozen):
    """A layer's trainable parameters are those of its tensors that train, as PyTorch names them; where some
    train and others do not, its saved bytes are not followed; frozen whole, they are."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = _Sequence(cell, dict(num_layers=2, bidirectional=True), "linear", True)
    for name, parameter in module.cell.named_parameters():
        parameter.requires_grad_(frozen not in (name, "all"))
    analysis = analyse(from_torch(module, (5, 8), batch=3), receptive_fields=False)
    assert analysis.totals.trainable_params == sum(p.numel() for p in module.parameters() if p.requires_grad)
    memory = training_memory(analysis)
    assert memory.exact == (frozen == "all")
    if memory.exact:
        torch.manual_seed(0)
        assert memory.saved_bytes == saved_by_autograd(module, torch.randn(3, 5, 8))
