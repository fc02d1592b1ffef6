"""Einsum, the kind and as read from a model, against torch.einsum: output shapes, and MACs equal to
FlopCounterMode's total / 2 (it counts the batched product PyTorch turns a two-operand einsum into)."""

from __future__ import annotations

import pytest

from convcalc import ConvcalcError
from convcalc.engine.analysis import analyse
from convcalc.engine.layers import Einsum
from convcalc.readers.pytorch import from_torch

CASES = [  # (per-sample equation, per-sample shapes): the batch letter z is added for torch
    ("nd,md->nm", [(7, 4), (5, 4)]), ("hnd,hmd->hnm", [(3, 7, 4), (3, 5, 4)]), ("nd,de->ne", [(7, 4), (4, 6)]),
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("nd->dn", [(7, 4)]), ("ijk,k->ij", [(2, 3, 4), (4,)]),
    ("ik,jk->ijk", [(3, 4), (5, 4)]), ("nd,nd->n", [(7, 4), (7, 4)]), ("ab,cd->abcd", [(2, 3), (4, 5)]),
    ("nxd,md->nm", [(3, 6, 4), (5, 4)]),  # x is summed away before the product
]


def test_a_token_separates_operands_with_a_semicolon():
    from convcalc.engine.network import Network
    from convcalc.readers import parse_layer

    layer = parse_layer("einsum:nd;de->ne,weight_shape=4x6")
    assert analyse(Network((7, 4), (layer,))).totals.macs == 7 * 4 * 6


@pytest.mark.needs_torch
@pytest.mark.parametrize("equation, shapes", CASES)
def test_against_torch(equation, shapes):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    left, output = equation.split("->")
    batched = ",".join("z" + t for t in left.split(",")) + "->z" + output
    tensors = [torch.randn(2, *shape) for shape in shapes]
    with FlopCounterMode(display=False) as counter:
        expected = torch.einsum(batched, *tensors)
    figures = Einsum(equation).merge(tuple(shapes))
    assert figures.output_shape == tuple(expected.shape[1:])
    assert 2 * figures.macs == counter.get_total_flops() // 2  # the batch of 2


@pytest.mark.needs_torch
def test_a_models_einsums_read_per_sample_whatever_letter_holds_the_batch():
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 6))

        def forward(self, x):
            q = torch.einsum("znd,de->zne", x, self.w)
            scores = torch.einsum("zhd,zgd->zhg", q, q).softmax(-1)
            return torch.einsum("zhg,zgd->hzd", scores, q)  # the batch moves to the second axis

    model = Attend().eval()
    analysis = analyse(from_torch(model, (5, 8)))
    with FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, 5, 8))
    assert [r.type for r in analysis.layers].count("Einsum") == 3 and analysis.totals.uncounted_layers == 0
    assert analysis.totals.macs == counter.get_total_flops() // 2 and analysis.totals.params == 48
    assert analysis.output_shape == (out.shape[0], out.shape[2])


@pytest.mark.parametrize("equation, shapes, message", [
    ("nd,md->nm", [(7, 4), (5, 3)], "letter 'd' is 4 in one place and 3"),
    ("n...,md->nm", [(7, 4), (5, 4)], "letters only"),
    ("nd,md,mk->nk", [(7, 4), (5, 4), (5, 2)], "convcalc reads one or two"),
    ("nd->nn", [(7, 4)], "repeats a letter"),
])
def test_refusals_name_the_equation(equation, shapes, message):
    with pytest.raises(ConvcalcError, match=message):
        Einsum(equation).merge(tuple(shapes))
