"""Receptive fields through window partitions and attention: each output unit's exact field,
per axis, against a brute-force oracle.

Without PyTorch, the oracle is the NumPy backend: change every channel of one input position by a
large amount and see which outputs change (softmax over a window's tokens changes every output of
that window). With PyTorch, it is autograd: the nonzero entries of the Jacobian of torchvision's
Swin blocks, in float64. Swin's shifted windows mask the pairs that the roll brought together with
-100 before the softmax: e^-100 is small, not zero, so the masked positions are read (their
gradients are nonzero) and a field at the wrap spans the axis, which the oracle confirms.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcalc import Network, analyse, parse_layer, parse_shape
from convcalc.engine.places import reshaped, whole
from convcalc.verbs.execute import prepare_layer

from .torchvision_models import torchvision

# (C, H, W) channels first -> channels last, a partition into windows of 4 x 4 tokens, softmax
# over each window's tokens, and back: the layer tokens of a windowed attention, without weights
PARTITION = ["permute:0x2x3x1", "reshape:2x4x2x4x4", "permute:0x1x3x2x4x5", "reshape:4x16x4"]
REVERSE = ["reshape:2x2x4x4x4", "permute:0x1x3x2x4x5", "reshape:8x8x4"]
WINDOWED = [*PARTITION, "softmax:dim=2", *REVERSE, "permute:0x3x1x2"]
SHIFTED = ["permute:0x2x3x1", "roll:-2x-2,1x2", *PARTITION[1:], "softmax:dim=2", *REVERSE, "roll:2x2,1x2",
           "permute:0x3x1x2"]
STACKS = {
    "windows": WINDOWED,
    "shifted windows": SHIFTED,
    "windows then shifted": [*WINDOWED, *SHIFTED],
    "convolution then windows": ["conv:4,k=3,p=1", *WINDOWED],
    "windows then strided convolution": [*WINDOWED, "conv:4,k=3,s=2,p=1"],
    "tokens attended whole": [*PARTITION, "softmax:dim=1", *REVERSE, "permute:0x3x1x2"],
}


def _run(network, x):
    rng = np.random.default_rng(0)
    calls, probe = [], x
    for layer in network.layers:
        call = prepare_layer(layer, probe, rng)
        calls.append(call)
        probe = call(probe)

    def run(y):
        for call in calls:
            y = call(y)
        return y

    return run


def _measured(network) -> dict[int, list]:
    """Per axis, each output unit's first and last input position, by perturbing each position."""
    x = np.random.default_rng(1).standard_normal((1, *network.input_shape))
    run = _run(network, x)
    base = run(x)
    height, width = network.input_shape[1:]
    out_h, out_w = base.shape[2:]
    reads = {0: [set() for _ in range(out_h)], 1: [set() for _ in range(out_w)]}
    for i in range(height):
        for j in range(width):
            moved = x.copy()
            moved[0, :, i, j] += 1e3
            changed = np.any(run(moved) != base, axis=(0, 1))
            for u, v in zip(*np.nonzero(changed)):
                reads[0][u].add(i)
                reads[1][v].add(j)
    return {axis: [(min(f), max(f)) if f else None for f in fields] for axis, fields in reads.items()}


def _computed(analysis) -> dict[int, list]:
    """Per axis, each output unit's field, cut to the input (convcalc counts padding as positions)."""
    last, sizes = len(analysis.layers), analysis.network.input_shape[1:]
    fields = {axis: [analysis.field_of(last, u, axis) for u in range(analysis.output_shape[1 + axis])]
              for axis in (0, 1)}
    return {axis: [None if f is None else (max(f[0], 0), min(f[1], sizes[axis] - 1)) for f in found]
            for axis, found in fields.items()}


@pytest.mark.parametrize("tokens", STACKS.values(), ids=STACKS.keys())
def test_fields_through_window_partitions_match_perturbation(tokens):
    network = Network(parse_shape("4x8x8"), tuple(parse_layer(t) for t in tokens), dtype="float64")
    assert _computed(analyse(network)) == _measured(network)


def test_a_window_reads_its_window_and_the_shift_wraps():
    windows = analyse(Network(parse_shape("4x8x8"), tuple(parse_layer(t) for t in WINDOWED)))
    assert [windows.field_of(len(WINDOWED), u, 0) for u in range(8)] == [(0, 3)] * 4 + [(4, 7)] * 4
    field = windows.layers[-1].receptive_field
    assert field.size == (4, 4) and field.jump == (1, 1)  # exact, not the whole input as before
    shifted = analyse(Network(parse_shape("4x8x8"), tuple(parse_layer(t) for t in SHIFTED)))
    # rolled by -2, windows of 4, rolled back: rows 2..5 form a window, and 6, 7, 0, 1 another, across the wrap
    assert [shifted.field_of(len(SHIFTED), u, 1) for u in range(8)] == [(0, 7)] * 2 + [(2, 5)] * 4 + [(0, 7)] * 2


def test_digits_follow_a_partition_and_its_reverse():
    height = whole(0, 56)
    split = reshaped(height, (56, 56, 96), (8, 7, 8, 7, 96))
    assert split == ((0, 8, 1), (1, 7, 1))  # window row, then row within the window
    assert reshaped(split, (8, 7, 8, 7, 96), (56, 56, 96)) == height
    assert reshaped(whole(0, 6), (6, 4), (4, 6)) is None  # rows that straddle the new axes are not followed


def _swin(torch, shifts, window=4, merge=False):
    tv = torchvision()
    from torchvision.models.swin_transformer import PatchMerging, SwinTransformerBlock
    from torchvision.ops.misc import Permute

    layers = [torch.nn.Conv2d(3, 8, 2, 2), Permute([0, 2, 3, 1])]
    dim = 8
    for shift in shifts:
        layers.append(SwinTransformerBlock(dim, 2, [window, window], [shift, shift], stochastic_depth_prob=0.0))
    if merge:
        layers += [PatchMerging(dim), SwinTransformerBlock(2 * dim, 2, [window, window], [0, 0],
                                                           stochastic_depth_prob=0.0)]
    assert tv is not None
    return torch.nn.Sequential(*layers, Permute([0, 3, 1, 2])).eval()


def _maxvit(torch, kinds):
    torchvision()
    from torchvision.models.maxvit import PartitionAttentionLayer

    layers = [torch.nn.Conv2d(3, 8, 2, 2)]
    for kind in kinds:  # MaxViT's block attention (windows of 4x4) and grid attention (a 4x4 grid, stride 2)
        layers.append(PartitionAttentionLayer(8, 4, 4, kind, (8, 8), 2, torch.nn.GELU, torch.nn.LayerNorm, 0.0, 0.0,
                                              0.0))
    return torch.nn.Sequential(*layers, torch.nn.Conv2d(8, 8, 3, padding=1)).eval()


SWIN = {
    "window": ((0,), 4, False, (3, 16, 16)),
    "shifted window": ((2,), 4, False, (3, 16, 16)),
    "window then shifted": ((0, 2), 4, False, (3, 16, 16)),
    "patch merging": ((0, 2), 4, True, (3, 32, 32)),
    "a wide map": ((0, 2), 4, False, (3, 16, 24)),
    "window as large as the map": ((0, 2), 8, False, (3, 16, 16)),
}


MAXVIT = {"grid": ("grid",), "window then grid": ("window", "grid")}


@pytest.mark.needs_torch
@pytest.mark.parametrize("shifts, window, merge, shape", [
    pytest.param(*case, id=name, marks=[pytest.mark.slow] if name in ("patch merging", "a wide map") else [])
    for name, case in SWIN.items()])
def test_swin_blocks_fields_equal_autograd(shifts, window, merge, shape):
    import torch

    torch.manual_seed(0)
    _check_against_autograd(torch, _swin(torch, shifts, window, merge), shape)


@pytest.mark.needs_torch
@pytest.mark.parametrize("kinds", MAXVIT.values(), ids=MAXVIT.keys())
def test_maxvit_grid_attention_fields_equal_autograd(kinds):
    """Grid attention reads the positions of its grid cell's tokens: every other row and column here
    (the grid's digit is the outer one), then a padded convolution past the edge."""
    import torch

    torch.manual_seed(0)
    _check_against_autograd(torch, _maxvit(torch, kinds), (3, 16, 16))


def _check_against_autograd(torch, model, shape):
    import copy

    from convcalc.readers.pytorch import from_torch

    analysis = analyse(from_torch(model, shape))
    exact = copy.deepcopy(model).double()
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    out = exact(x)[0]
    weights = torch.rand(out.shape[0], dtype=torch.float64) + 0.5  # a random mix of channels: nothing cancels
    # reads[h][w]: the input positions output position (h, w), any channel, has a nonzero gradient for
    reads = [[torch.autograd.grad((weights * out[:, h, w]).sum(), x, retain_graph=True)[0][0].ne(0).any(0)
              for w in range(out.shape[2])] for h in range(out.shape[1])]
    measured = {}
    for axis in (0, 1):
        fields = []
        for u in range(out.shape[1 + axis]):
            masks = reads[u] if axis == 0 else [row[u] for row in reads]
            read = torch.stack(masks).any(0).any(1 - axis).nonzero().flatten().tolist()
            fields.append((min(read), max(read)) if read else None)
        measured[axis] = fields
    assert _computed(analysis) == measured


def _brute_bounds(graph, node: int, unit: int, memo: dict) -> set:
    """Every network-input position ``unit`` of ``node`` reads, as sets, window by window."""
    if node == 0:
        return {unit}
    key = (node, unit)
    if key not in memo:
        found = set()
        for source, windows in zip(graph.sources[node], graph.windows[node]):
            for read in windows[0].reads(unit):
                found |= _brute_bounds(graph, source, read, memo)
        memo[key] = found
    return memo[key]


@pytest.mark.parametrize("gate", ["broadcast", "global", "partition"])
def test_a_branch_that_stays_put_does_not_move_with_the_others(gate):
    """A merge of a branch that moves with the unit and one that does not (a broadcast gate, keys read
    whole, a window): fields no longer move by whole periods, and each unit's is found as it is."""
    from convcalc.engine.receptive import FieldGraph
    from convcalc.engine.windows import IDENTITY, Broadcast, Global, Partition, Sliding

    graph = FieldGraph(1)
    moving = graph.add((0,), (Sliding(3, 2, 1),))
    still = graph.add((0,), (Global(16),))
    window = {"broadcast": Broadcast(), "global": Global(8), "partition": Partition((2, 4), (False, True))}[gate]
    merged = graph.add((moving, still if gate != "partition" else moving), [(IDENTITY,), (window,)])
    last = graph.add((merged,), (Sliding(3, 1, 1),))
    memo: dict = {}
    for node in (merged, last):
        for unit in range(-3, 12):
            reads = _brute_bounds(graph, node, unit, memo)
            assert graph.bounds(node, unit, 0) == (min(reads), max(reads)), (node, unit)
