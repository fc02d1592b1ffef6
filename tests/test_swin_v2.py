"""Layers computed without the input, as Swin V2's continuous position bias (a Linear-ReLU-Linear MLP
on a fixed table of relative coordinates, gathered by a fixed index): read as layers, exact against
FlopCounterMode at any batch, counted once per pass as PyTorch runs them (each such layer says so); the
receptive fields of the input's path are those torch's gradients show."""

from __future__ import annotations

import pytest

from convcalc import analyse, from_torch
from convcalc.engine.analysis import ONCE_PER_PASS
from convcalc.engine.memory import training_memory

from .torch_nets import saved_by_autograd
from .torchvision_models import torchvision

pytestmark = pytest.mark.needs_torch

try:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests skip)
    pass


def _macs(model, x) -> int:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def _small_swin_v2():
    swin = torchvision().models.swin_transformer
    torch.manual_seed(0)
    return swin.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 1], num_heads=[2, 4],
                                window_size=[4, 4], block=swin.SwinTransformerBlockV2,
                                downsample_layer=swin.PatchMergingV2, num_classes=10).eval()


def test_a_swin_v2_is_exact_at_any_batch_and_counts_its_position_bias_once():
    model = _small_swin_v2()
    shape = (3, 32, 32)
    analysis = analyse(from_torch(model, shape))
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs == _macs(model, torch.zeros(1, *shape))
    assert analysis.output_shape == (10,)
    # the position-bias MLPs: read as layers, each Linear noted as running once per forward pass
    mlps = [r for r in analysis.layers if ".cpb_mlp." in r.name and r.type == "Linear"]
    assert len(mlps) == 2 * 3 and all(ONCE_PER_PASS in r.notes for r in mlps)
    bias = sum(_macs(block.attn.cpb_mlp, block.attn.relative_coords_table)
               for stage in (model.features[1], model.features[3]) for block in stage)
    assert sum(r.macs for r in mlps) == bias
    # at batch 3, as PyTorch, once: the rest three times
    three = analyse(from_torch(model, shape, batch=3), receptive_fields=False)
    assert three.totals.macs == _macs(model, torch.zeros(3, *shape)) == 3 * (analysis.totals.macs - bias) + bias


def test_the_fixed_branch_adds_nothing_to_the_inputs_receptive_field():
    class Biased(torch.nn.Module):
        """A 3x3 convolution plus a bias an MLP computes from a fixed table of coordinates."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
            grid = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij"), -1)
            self.register_buffer("table", grid)

        def forward(self, x):
            return self.conv(x) + self.mlp(self.table).permute(2, 0, 1)

    model = Biased().eval()
    analysis = analyse(from_torch(model, (2, 9, 9)))
    assert [r.type for r in analysis.layers if r.name in ("table", "mlp.0")] == ["Constant", "Linear"]
    assert analysis.totals.macs == _macs(model, torch.zeros(1, 2, 9, 9))
    # torch's own answer: the input positions the gradient of the centre output reaches
    x = torch.randn(1, 2, 9, 9, requires_grad=True)
    model(x)[0, 0, 4, 4].backward()
    reached = x.grad[0].abs().sum(0).nonzero()
    span = tuple(int(reached[:, axis].max() - reached[:, axis].min()) + 1 for axis in (0, 1))
    assert tuple(int(s) for s in analysis.layers[-1].receptive_field.size) == span == (3, 3)


def test_an_index_gathers_an_activation():
    class Gather(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(3, 3, 1)
            self.register_buffer("index", torch.tensor([4, 0, 0, 2, 3, 1]))

        def forward(self, x):
            y = self.conv(x)[:, :, self.index]
            return y * y

    model = Gather()
    analysis = analyse(from_torch(model, (3, 5)))
    assert [r.type for r in analysis.layers] == ["Conv1d", "IndexSelect", "Mul"]
    assert analysis.output_shape == tuple(model(torch.zeros(2, 3, 5)).shape[1:]) == (3, 6)
    # autograd keeps the model's index (a buffer) and the gathered values the product saves
    memory = training_memory(analyse(from_torch(model, (3, 5), batch=2), receptive_fields=False))
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(2, 3, 5))


def test_a_convolution_of_a_fixed_grid_repeated_over_the_batch():
    """XCiT's position encoding: Fourier features of a coordinate grid (one, made in forward), a 1x1
    convolution, then repeated over the batch and added to the tokens."""

    class Encoded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
            self.projection = torch.nn.Conv2d(4, 8, 1)

        def forward(self, x):
            tokens = self.embed(x)
            h, w = tokens.shape[-2:]
            ys = torch.arange(1, h + 1, dtype=torch.float32)[:, None].repeat(1, w)
            xs = torch.arange(1, w + 1, dtype=torch.float32).repeat(h, 1)
            grid = torch.stack([ys.sin(), ys.cos(), xs.sin(), xs.cos()])[None]  # 1 x 4 x h x w
            return tokens + self.projection(grid).repeat(x.shape[0], 1, 1, 1)

    model = Encoded().eval()
    analysis = analyse(from_torch(model, (3, 16, 12)))
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.macs == _macs(model, torch.zeros(1, 3, 16, 12))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    projection = next(r for r in analysis.layers if r.name == "projection")
    assert ONCE_PER_PASS in projection.notes and projection.macs == 4 * 8 * 4 * 3
    assert analyse(from_torch(model, (3, 16, 12), batch=2)).totals.macs == _macs(model, torch.zeros(2, 3, 16, 12))


def test_a_fixed_grid_repeated_over_the_batch_before_a_product_is_costed_per_sample():
    """Fixed values repeated over the batch first (a copy per sample), then convolved: PyTorch runs
    the convolution on every copy, so it is counted per sample, not once per pass."""

    class Repeated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
            self.projection = torch.nn.Conv2d(2, 8, 1)

        def forward(self, x):
            tokens = self.embed(x)
            h, w = tokens.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
            return tokens + self.projection(torch.stack([ys, xs])[None].repeat(x.shape[0], 1, 1, 1))

    model = Repeated().eval()
    for batch in (1, 3):
        analysis = analyse(from_torch(model, (3, 16, 16), batch=batch))
        assert analysis.totals.macs == _macs(model, torch.zeros(batch, 3, 16, 16))
        projection = next(r for r in analysis.layers if r.name == "projection")
        assert projection.macs == batch * 2 * 8 * 4 * 4 and ONCE_PER_PASS not in projection.notes


def test_a_fixed_grid_repeated_over_a_batch_the_capture_could_not_keep_symbolic():
    """RAFT's coordinate grid in a model torch.export traces at a fixed batch (its forward branches on
    the batch's parity, a guard no symbolic batch satisfies): the grid, repeated to the traced batch,
    is one sample's fixed values, and the sum reading it is per sample, as PyTorch runs it."""

    class Flow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encode = torch.nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):  # (B, 3, H, W)
            ys, xs = torch.meshgrid(torch.arange(x.shape[2]), torch.arange(x.shape[3]), indexing="ij")
            grid = torch.stack([xs, ys]).float()[None].repeat(x.shape[0], 1, 1, 1)
            flow = self.encode(x)
            return grid + (flow if x.shape[0] % 2 == 0 else 2 * flow)

    model = Flow().eval()
    analysis = analyse(from_torch(model, (3, 8, 10)))
    assert analysis.output_shape == tuple(model(torch.zeros(2, 3, 8, 10)).shape[1:]) == (2, 8, 10)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.macs == _macs(model, torch.zeros(2, 3, 8, 10)) // 2
