"""In-place writes through views, as ``torch.export`` keeps them (MViT v2's relative positions added
into ``attn[:, :, 1:, 1:]``, its residual pooling into ``x[:, :, 1:]``): a later read of the tensor
sees the write. Against PyTorch: FlopCounterMode's MACs, the output, autograd's saved bytes; the
``slice_scatter`` kind against ``torch.slice_scatter``; a write convcalc cannot follow is not
counted, named, never read as the old values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convcalc import analyse
from convcalc.engine.errors import ConvcalcError
from convcalc.engine.layers import SliceScatter
from convcalc.readers.document import load_document
from convcalc.verbs.preparers import prepare_layer

try:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests that need it skip)
    torch = None


@pytest.mark.parametrize(("first", "src", "dim", "start", "end", "step"), [
    ((4, 9, 9), (4, 8, 9), 2, 1, None, 1), ((4, 9, 9), (4, 9, 3), 3, 0, 9, 3), ((4, 9, 9), (2, 9, 9), 1, -2, None, 1),
    ((4, 9, 9), (4, 9, 9), 2, 1, None, 1), ((4, 9, 9), (4, 2, 9), -2, 7, 100, 1)])
def test_slice_scatter_accepts_what_torch_accepts(first, src, dim, start, end, step):
    try:
        expected = tuple(torch.slice_scatter(torch.zeros(2, *first), torch.zeros(2, *src), dim, start, end,
                                             step).shape[1:]) if torch else None
    except RuntimeError:
        expected = None
    layer = SliceScatter(dim, start, end, step)
    try:
        got = layer.merge((first, src)).output_shape
    except ConvcalcError:
        got = None
    if torch:
        assert got == expected
    if got is not None:  # the NumPy backend writes the same values
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((2, *first)), rng.standard_normal((2, *src))
        ours = prepare_layer(layer, a, rng)(a, b)
        if torch:
            theirs = torch.slice_scatter(torch.from_numpy(a), torch.from_numpy(b), dim, start, end, step).numpy()
            np.testing.assert_array_equal(ours, theirs)


def test_slice_scatter_in_a_document_joins_two_branches():
    document = {"input": [4, 9, 9], "layers": [
        {"type": "slice", "name": "piece", "dim": 2, "start": 1},
        {"type": "relu", "name": "changed"},
        {"type": "slice_scatter", "from": ["input", "changed"], "dim": 2, "start": 1}]}
    analysis = analyse(load_document(json.dumps(document)))
    assert analysis.output_shape == (4, 9, 9) and analysis.totals.macs == 0
    with pytest.raises(ConvcalcError, match="slice_scatter writes 4x8x9 where the slice along dim 2 is 4x7x9"):
        analyse(Network((4, 9, 9), (SliceScatter(2, 2, inputs=("input", "#1")),), ) if False else
                load_document(json.dumps({**document, "layers": document["layers"][:2] + [
                    {"type": "slice_scatter", "from": ["input", "changed"], "dim": 2, "start": 2}]})))


class _RelativeBias(torch.nn.Module if torch else object):
    """MViT v2's attention: scores, a learned bias added into all but the class token's row and
    column, then softmax; and the residual added into the result but the class token."""

    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(8, 24)
        self.bias = torch.nn.Linear(8, 7)

    def forward(self, x):  # (B, 7, 8): a class token and 6 others
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = q @ k.transpose(1, 2)
        attn[:, 1:, 1:] += self.bias(q)[:, 1:, 1:]
        out = attn.softmax(dim=-1) @ v
        out[:, 1:] += q[:, 1:]
        return out


class _Scattered(torch.nn.Module if torch else object):
    """``torch.slice_scatter`` written out."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(8, 8)

    def forward(self, x):  # (B, 5, 8)
        return torch.slice_scatter(x, self.first(x[:, ::2]), 1, 0, None, 2).softmax(-1)


class _Rewritten(torch.nn.Module if torch else object):
    """A tensor changed in place and read again by its old name."""

    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x):
        y = self.first(x)
        y.mul_(2.0)
        return self.second(y)


class _Selected(torch.nn.Module if torch else object):
    """A write into a select view, which convcalc does not follow: it is not counted, not ignored."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(8, 8)

    def forward(self, x):
        y = self.first(x)
        y[:, 0] = y[:, 1] * 2
        return y.softmax(-1)


def _macs(model, x) -> int:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.needs_torch
def test_writes_into_views_are_read_as_pytorch_runs_them():
    from convcalc import from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    torch.manual_seed(0)
    model = _RelativeBias().eval()
    analysis = analyse(from_torch(model, (7, 8)))
    types = [r.type for r in analysis.layers]
    assert types.count("SliceScatter") == 3 and [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs == _macs(model, torch.zeros(1, 7, 8))
    assert analysis.output_shape == tuple(model(torch.zeros(2, 7, 8)).shape[1:])
    # the bias is added (6x6 FLOPs), the residual too (6x8): both on the path to the output
    adds = [r.flops for r in analysis.layers if r.type == "Add"]
    assert sorted(adds) == [36, 48]
    three = analyse(from_torch(model, (7, 8), batch=3), receptive_fields=False)
    memory = training_memory(three)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(3, 7, 8))


@pytest.mark.needs_torch
def test_slice_scatter_is_read():
    from convcalc import from_torch

    model = _Scattered().eval()
    analysis = analyse(from_torch(model, (5, 8)))
    assert [r.type for r in analysis.layers] == ["Slice", "Linear", "SliceScatter", "Softmax"]
    assert analysis.totals.macs == _macs(model, torch.zeros(1, 5, 8)) == 3 * 8 * 8
    assert analysis.output_shape == tuple(model(torch.zeros(2, 5, 8)).shape[1:])


@pytest.mark.needs_torch
def test_a_tensor_changed_in_place_is_read_changed():
    from convcalc import from_torch

    analysis = analyse(from_torch(_Rewritten().eval(), (8,)))
    assert [r.type for r in analysis.layers] == ["Linear", "Mul", "Linear"]
    assert analysis.layers[2].inputs == (analysis.layers[1].name,)


@pytest.mark.needs_torch
def test_a_write_convcalc_cannot_follow_is_not_counted_rather_than_ignored():
    from convcalc import from_torch

    analysis = analyse(from_torch(_Selected().eval(), (8,)))
    uncounted = [r for r in analysis.layers if not r.counted]
    assert uncounted and uncounted[0].type == "aten.copy_"
    assert analysis.layers[-1].type == "Softmax" and uncounted[0].name in analysis.layers[-1].inputs


class _OlderViews(torch.nn.Module if torch else object):
    """Views taken before a write and read after it: PyTorch's views share the storage written, so they
    read the new values (a slice overlapping the region written, and a transposed view, which convcalc
    does not follow); a slice apart from the region written reads what it read before."""

    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

    def forward(self, x):  # (B, 6, 8)
        y = self.first(x)
        overlapping, apart, turned = y[:, 1:, ::2], y[:, :1], y.transpose(1, 2)
        y[:, 2:] += self.second(x)[:, 2:]
        return overlapping.softmax(-1).sum(-1), apart.sum(-1), turned.softmax(-1).sum(-1)


@pytest.mark.needs_torch
def test_a_view_taken_before_a_write_reads_the_write():
    from convcalc import from_torch

    model = _OlderViews().eval()
    analysis = analyse(from_torch(model, (6, 8)))
    # the second Linear reaches the results only through the write: its MACs are the oracle's
    assert analysis.totals.macs == _macs(model, torch.zeros(1, 6, 8)) == 2 * 6 * 8 * 8
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert [r.name for r in analysis.layers if not r.counted] == [
        r.name for r in analysis.layers if r.type == "aten.transpose"] != []  # the transposed view: named
    by_name = {r.name: r for r in analysis.layers}
    scatter = next(r.name for r in analysis.layers if r.type == "SliceScatter")

    def reads_write(name):  # whether the layer's value depends on the write
        return name == scatter or any(reads_write(s) for s in by_name[name].inputs if s in by_name)

    sums = {r.output_shape: reads_write(r.name) for r in analysis.layers if r.type == "Sum"}
    assert sums == {(5,): True, (1,): False, (8,): True}  # overlapping, apart, transposed


class _IntoZeros(torch.nn.Module if torch else object):
    """A tensor made without the input, then the input's values written into it (an output buffer)."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(8, 8)

    def forward(self, x):  # (B, 6, 8)
        out = x.new_zeros(x.shape)
        out[:, :3] = self.first(x[:, :3])
        out[:, 3:] = self.first(x[:, 3:]) * 2
        return out.softmax(-1)


class _AddedInto(torch.nn.Module if torch else object):
    """A whole tensor made without the input, the input's values added into it in place."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(8, 8)

    def forward(self, x):
        out = torch.zeros(x.shape[0], 6, 8)
        out.add_(self.first(x))
        return out.softmax(-1)


class _CopiedInto(torch.nn.Module if torch else object):
    """A whole tensor made without the input, the input's values copied into it."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(8, 8)

    def forward(self, x):
        out = x.new_empty(x.shape)
        out.copy_(self.first(x))
        return out.softmax(-1)


@pytest.mark.needs_torch
@pytest.mark.parametrize(("model", "uncounted"), [(_IntoZeros, ["aten.copy_"]), (_AddedInto, []), (_CopiedInto, [])])
def test_the_input_written_into_a_fixed_tensor_is_read_not_dropped(model, uncounted):
    from convcalc import from_torch

    module = model().eval()
    analysis = analyse(from_torch(module, (6, 8)))
    assert analysis.totals.macs == _macs(module, torch.zeros(1, 6, 8)) != 0
    assert analysis.output_shape == tuple(module(torch.zeros(2, 6, 8)).shape[1:])
    # where convcalc cannot say what the fixed values cost, the write that turns them into the input's
    # is named; a write of the whole tensor is its value
    assert [r.type for r in analysis.layers if not r.counted] == uncounted
