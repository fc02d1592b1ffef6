"""What ``torch.einsum`` keeps for the backward pass, against what autograd saves (``saved_tensors_hooks``,
torch 2.13): the operands of its one product as it permutes and reshapes them (a view of an operand's
storage, a copy, or a sum of letters only one operand has), and where its result's elements sit."""

from __future__ import annotations

import random

import pytest

from convcalc.engine.strides import einsum_plan

from .torch_nets import saved_by_autograd

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None

pytestmark = pytest.mark.needs_torch


def _operand(term, sizes, rng):
    """A tensor of the term's sizes laid out in a random order of axes, sometimes a slice of a larger one."""
    shape = [sizes[c] for c in term]
    order = rng.sample(range(len(term)), len(term))
    x = torch.randn(*[shape[p] for p in order]).permute(*[order.index(i) for i in range(len(term))])
    if term and rng.random() < 0.3:
        axis = rng.randrange(len(term))
        larger = list(x.shape)
        larger[axis] *= 2
        x = torch.randn(*larger).narrow(axis, 0, x.shape[axis])
    return x


@pytest.mark.parametrize("seed", range(4))
def test_the_plan_is_what_torch_einsum_does(seed):
    """Random two-operand equations on random layouts: each saved operand (its own storage, or a new tensor
    of so many elements) and the result's strides are PyTorch's, wherever convcalc follows the plan."""
    rng = random.Random(seed)
    followed = 0
    for _ in range(400):
        letters = rng.sample("abcdefgBGHIJ", rng.randint(2, 6))
        sizes = {c: rng.choice([1, 2, 3, 4]) for c in letters}
        terms = tuple("".join(rng.sample(letters, rng.randint(1, min(4, len(letters))))) for _ in range(2))
        used = sorted(set("".join(terms)))
        output = "".join(rng.sample(used, rng.randint(0, len(used))))
        grads = rng.choice([(True, True), (True, False), (False, True)])
        operands = [_operand(t, sizes, rng).requires_grad_(g) for t, g in zip(terms, grads)]
        pointers = [x.untyped_storage().data_ptr() for x in operands]
        kept = []

        def pack(tensor):
            pointer = tensor.untyped_storage().data_ptr()
            kept.append((pointers.index(pointer), True, 0) if pointer in pointers
                        else (-1, False, tensor.untyped_storage().nbytes() // 4))
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            result = torch.einsum(f"{terms[0]},{terms[1]}->{output}", *operands)
        plan = einsum_plan(terms, output, tuple((tuple(x.shape), x.stride()) for x in operands), grads)
        if plan is None:
            continue
        followed += 1
        saved, strides = plan
        assert sorted((k if viewed else -1, viewed, 0 if viewed else n) for k, viewed, n in saved) == sorted(kept)
        assert [s for s, n in zip(strides, result.shape) if n != 1] == \
            [s for s, n in zip(result.stride(), result.shape) if n != 1]
    assert followed > 300  # most layouts are followed


class _MaxVitAttention(torch.nn.Module if torch else object):
    """torchvision MaxViT's relative-position attention, small: two einsums over permuted chunks of one
    projection (the query a copy for bmm, the scaled key a new tensor), a softmax between them."""

    def __init__(self):
        super().__init__()
        self.to_qkv, self.out = torch.nn.Linear(12, 36), torch.nn.Linear(12, 12)

    def forward(self, x):  # (B, G, P, 12), 3 heads of 4
        b, g, p, d = x.shape
        q, k, v = (t.reshape(b, g, p, 3, 4).permute(0, 1, 3, 2, 4) for t in torch.chunk(self.to_qkv(x), 3, dim=-1))
        scores = torch.softmax(torch.einsum("B G H I D, B G H J D -> B G H I J", q, k * 0.5), dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", scores, v)
        return self.out(out.permute(0, 1, 3, 2, 4).reshape(b, g, p, d))


class _Learned(torch.nn.Module if torch else object):
    def __init__(self, equation, shape):
        super().__init__()
        self.weight, self.equation = torch.nn.Parameter(torch.randn(*shape)), equation
        self.linear = torch.nn.Linear(6, 6)

    def forward(self, x):
        return torch.einsum(self.equation, torch.relu(self.linear(x)), self.weight)


class _Branches(torch.nn.Module if torch else object):
    def __init__(self, equation):
        super().__init__()
        self.a, self.b, self.equation = torch.nn.Linear(6, 6), torch.nn.Linear(6, 6), equation

    def forward(self, x):
        return torch.einsum(self.equation, self.a(x), torch.relu(self.b(x)))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("build, shape", [
    (_MaxVitAttention, (2, 5, 12)), (lambda: _Learned("bnd,de->bne", (6, 4)), (5, 6)),
    (lambda: _Learned("bnd,ed->bne", (4, 6)), (5, 6)), (lambda: _Learned("bnd,dne->bne", (6, 5, 3)), (5, 6)),
    (lambda: _Branches("bnd,bmd->bnm"), (5, 6)), (lambda: _Branches("bnd,bnd->bn"), (5, 6)),
    (lambda: _Branches("bnd,bne->bde"), (5, 6)), (lambda: _Branches("bnd,bnd->bnd"), (5, 6))])
def test_models_with_einsums_save_what_autograd_saves(build, shape, batch):
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = build()
    memory = training_memory(analyse(from_torch(module, shape, batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, *shape))


def test_an_order_convcalc_does_not_follow_is_not_called_exact():
    """Where the second operand's own letters come first in the output, PyTorch sometimes swaps the product's
    factors: convcalc says it does not know rather than guess."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    memory = training_memory(analyse(from_torch(_Branches("bnd,bmd->bmn"), (5, 6), batch=3), receptive_fields=False))
    assert not memory.exact


class _OneOperand(torch.nn.Module if torch else object):
    def __init__(self, equation):
        super().__init__()
        self.linear, self.equation = torch.nn.Linear(6, 6), equation

    def forward(self, x):
        return torch.einsum(self.equation, self.linear(x))


@pytest.mark.parametrize("equation", ["bij->bji", "bij->bi", "bij->b"])
def test_an_einsum_of_one_operand_saves_nothing(equation):
    """A transpose or a sum written as an einsum makes no product: autograd saves only the linear layer's
    input, and no plan is asked of the einsum (that crashed the memory figures)."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import inference_memory, training_memory

    module = _OneOperand(equation)
    analysis = analyse(from_torch(module, (6, 6), batch=2), receptive_fields=False)
    memory = training_memory(analysis)
    torch.manual_seed(0)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(module, torch.randn(2, 6, 6))
    inference_memory(analysis)
