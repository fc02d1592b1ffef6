"""Whole batches joined along the batch's axis and split back, as RAFT runs both frames through one
encoder (``torch.cat([image1, image2], dim=0)``, then ``torch.chunk(features, 2)``): read per sample as
the frames stacked on a new axis, the layers between on slices, each piece the frame it selects.
Against PyTorch: FlopCounterMode's MACs, the parameters, the output's shape, autograd's saved bytes;
an operation that would need the joined axis's order is not counted, never misread."""

from __future__ import annotations

import pytest

from convcalc import analyse

try:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests that need it skip)
    torch = None


class _Frames(torch.nn.Module if torch else object):
    """Two frames stacked on the channel axis, encoded as one batch, then compared."""

    def __init__(self, split: str = "chunk"):
        super().__init__()
        self.split = split
        self.encode = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.InstanceNorm2d(8),
                                          torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2))
        self.head = torch.nn.Conv2d(16, 4, 1)

    def forward(self, x):
        features = self.encode(torch.cat([x[:, :3], x[:, 3:]], dim=0))
        if self.split == "chunk":
            first, second = torch.chunk(features, 2, dim=0)
        else:
            first, second = features.split(features.shape[0] // 2)
        return self.head(torch.cat([first, second * first], dim=1))


class _Reordered(_Frames):
    """The joined batch reshaped as if the batch were its outer factor: not readable per sample."""

    def forward(self, x):
        features = self.encode(torch.cat([x[:, :3], x[:, 3:]], dim=0))
        return features.reshape(x.shape[0], 16, *features.shape[2:]).softmax(1)


def _macs(model, x) -> int:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.needs_torch
@pytest.mark.parametrize("split", ["chunk", "split"])
def test_frames_joined_along_the_batch_are_read_per_sample(split):
    from convcalc import from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    torch.manual_seed(0)
    model, shape = _Frames(split).eval(), (6, 12, 10)
    analysis = analyse(from_torch(model, shape))
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.output_shape == tuple(model(torch.zeros(2, *shape)).shape[1:])
    assert analysis.totals.macs == _macs(model, torch.zeros(1, *shape))
    three = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    assert three.totals.macs == _macs(model, torch.zeros(3, *shape))
    memory = training_memory(three)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(3, *shape))


@pytest.mark.needs_torch
def test_receptive_field_through_the_join_is_measured():
    """A linear encoder (no norm, no activation): an output depends on an input pixel exactly where the
    gradient says so; the largest field along each axis equals convcalc's."""
    from convcalc import from_torch

    torch.manual_seed(0)
    model, shape = _Frames().eval(), (6, 12, 10)
    model.encode = torch.nn.Sequential(model.encode[0], model.encode[3])
    x = torch.randn(1, *shape, requires_grad=True)
    out = model(x)
    largest = [0, 0]
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            grad, = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
            rows, cols = grad.abs().sum(dim=(0, 1, 3)).nonzero(), grad.abs().sum(dim=(0, 1, 2)).nonzero()
            largest = [max(largest[0], int(rows.max() - rows.min()) + 1), max(largest[1], int(cols.max() - cols.min()) + 1)]
    field = analyse(from_torch(model, shape)).layers[-1].receptive_field
    assert [int(n) for n in field.size] == largest == [5, 5]


@pytest.mark.needs_torch
def test_a_reshape_needing_the_joined_order_is_not_counted():
    from convcalc import from_torch

    analysis = analyse(from_torch(_Reordered().eval(), (6, 12, 10)))
    assert [r.name for r in analysis.layers if not r.counted] == ["reshape"]


@pytest.mark.needs_torch
def test_even_chunks_change_only_symbolic_sizes_they_divide():
    from torch.fx.experimental.symbolic_shapes import statically_known_true

    from convcalc.readers.pytorch.chunks import _even

    x = torch.zeros(4, 3)
    assert _even(torch, statically_known_true, x, 2) is None  # a concrete size: chunk runs as written
    assert _even(torch, statically_known_true, x, True) is None
    assert _even(torch, statically_known_true, x, 0) is None


class _Stacked(torch.nn.Module if torch else object):
    def __init__(self, dim: int):
        super().__init__()
        self.dim, self.conv = dim, torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return torch.stack([y, y * 2, y + 1], dim=self.dim)


@pytest.mark.needs_torch
@pytest.mark.parametrize("dim", [0, 1, 2, -1, 4])
def test_stack_is_read_per_sample(dim):
    """torch.stack along any axis, the batch's own included (which then comes second)."""
    from convcalc import from_torch

    model = _Stacked(dim).eval()
    analysis = analyse(from_torch(model, (3, 8, 8)))
    traced = tuple(model(torch.zeros(2, 3, 8, 8)).shape)
    batch_axis = 1 if dim == 0 else 0
    assert analysis.output_shape == traced[:batch_axis] + traced[batch_axis + 1:]
    assert [r.name for r in analysis.layers if not r.counted] == []


class _Lookup(torch.nn.Module if torch else object):
    """RAFT's correlation lookup, small: every position's correlation map, merged with the batch,
    sampled around a point that starts fixed (a coordinate grid) and then moves with the input."""

    def __init__(self):
        super().__init__()
        self.features, self.update = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(9, 2, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        f = self.features(x).flatten(2)
        corr = (f.transpose(1, 2) @ f).reshape(b * h * w, 1, h, w)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        coords = torch.stack([xs, ys]).float()[None].repeat(b, 1, 1, 1)
        delta = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 3), indexing="ij"), -1)
        for _ in range(2):
            grid = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2) + delta.view(1, 3, 3, 2)
            grid = grid * (2 / (w - 1)) - 1
            looked = torch.nn.functional.grid_sample(corr, grid, align_corners=True).view(b, h, w, 9)
            coords = coords + self.update(looked.permute(0, 3, 1, 2))
        return coords


@pytest.mark.needs_torch
def test_a_lookup_with_grid_sample_is_exact():
    from convcalc import from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    torch.manual_seed(0)
    model, shape = _Lookup().eval(), (3, 6, 5)
    analysis = analyse(from_torch(model, shape))
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert [r.type for r in analysis.layers].count("GridSample") == 2
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.output_shape == tuple(model(torch.zeros(2, *shape)).shape[1:])
    three = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    assert three.totals.macs == _macs(model, torch.zeros(3, *shape))
    memory = training_memory(three)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(3, *shape))


class _Keywords(_Frames):
    """The split written with keywords, as PyTorch takes them."""

    def forward(self, x):
        features = self.encode(torch.cat([x[:, :3], x[:, 3:]], dim=0))
        first, second = torch.chunk(input=features, chunks=2, dim=0)
        third, fourth = features.split(split_size=features.shape[0] // 2, dim=-4)
        return self.head(torch.cat([first + third, second * fourth], dim=1))


@pytest.mark.needs_torch
def test_a_chunk_or_split_written_with_keywords_keeps_the_batch_symbolic():
    from convcalc import from_torch

    torch.manual_seed(0)
    model, shape = _Keywords().eval(), (6, 12, 10)
    analysis = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.macs == _macs(model, torch.zeros(3, *shape))


class _Numbered(torch.nn.Module if torch else object):
    """A fixed tensor sized by the batch merged with another size (one number per slice)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        f = self.conv(x.reshape(2 * x.shape[0], 3, 6, 6))
        return f * torch.arange(f.shape[0]).float().view(-1, 1, 1, 1)


@pytest.mark.needs_torch
def test_a_fixed_tensor_sized_by_a_merged_batch_is_one_samples_operand():
    from convcalc import from_torch

    model, shape = _Numbered().eval(), (6, 6, 6)
    analysis = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    assert [r.type for r in analysis.layers] == ["Reshape", "Conv2d", "Mul"]
    assert analysis.totals.macs == _macs(model, torch.zeros(3, *shape))
    assert analysis.output_shape == (2, 4, 6, 6)


@pytest.mark.needs_torch
def test_a_captured_lookup_is_written_as_a_document_and_read_back():
    """The document a captured RAFT-like model converts to holds the same network: the joined frames,
    the GridSample, the detach, a division by a 0-d tensor (RAFT's correlation over sqrt(channels))."""
    import json

    from convcalc import from_torch
    from convcalc.output.document import network_to_dict
    from convcalc.readers.document import load_document

    class Scaled(_Lookup):
        def forward(self, x):
            frames = torch.cat([x, x.flip(1)], dim=0)
            first, second = torch.chunk(self.features(frames), 2, dim=0)
            return super().forward(x).detach() + (first - second)[:, :2] / torch.sqrt(torch.tensor(8.0))

    model, shape = Scaled().eval(), (3, 6, 5)
    network = from_torch(model, shape)
    again = load_document(json.dumps(network_to_dict(network)))
    ours, theirs = analyse(network, receptive_fields=False), analyse(again, receptive_fields=False)
    assert [r.type for r in theirs.layers] == [r.type for r in ours.layers]
    assert {"GridSample", "Detach", "Div", "Concat"} <= {r.type for r in ours.layers}
    assert (theirs.totals.macs, theirs.totals.params, theirs.output_shape) == \
        (ours.totals.macs, ours.totals.params, ours.output_shape) == \
        (_macs(model, torch.zeros(1, *shape)), sum(p.numel() for p in model.parameters()),
         tuple(model(torch.zeros(2, *shape)).shape[1:]))
