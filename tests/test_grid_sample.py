"""grid_sample (``F.grid_sample``) against PyTorch: output shapes and the NumPy backend's values
over every mode, padding mode and align_corners, on 2-D and 3-D inputs, with and without leading
axes (a batch PyTorch sees merged with another size, as RAFT's lookup); no MACs, as
FlopCounterMode counts none, and FLOPs from the taps autograd finds one output reading; the
saved bytes autograd records; each refusal torch makes, on the command line; and receptive
fields against a brute force."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import ConvcalcError, analyse, parse_layer
from convcalc.cli import app
from convcalc.engine.layers import GridSample
from convcalc.engine.layers.base import Use
from convcalc.engine.memory import training_memory
from convcalc.engine.roofline import roofline
from convcalc.readers import load_document, parse_constructor
from convcalc.verbs.explain import explain
from convcalc.verbs.preparers import Runner

from .torch_nets import saved_by_autograd

try:
    import torch
    from torch import nn
    from torch.nn import functional as TF
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # the tests that check against torch say so (needs_torch)
    pass

BATCH = 2
runner = CliRunner()
MODES = ("bilinear", "nearest", "bicubic")
PADDINGS = ("zeros", "border", "reflection")
# grid values that land exactly on the corners, centres and half-way points, and past the edges
SPECIAL = (-1.0, 1.0, 0.0, -0.5, 0.5, 1.5, -1.5, 3.0, -3.0, 1e9, -1e9)


def _run(layer, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return layer.prepare(Runner(np.random.default_rng(0), x.dtype), x)(x, grid)


def _grid(rng, shape, dtype):
    """Points spread over and past the input, half of them on the special values."""
    grid = rng.uniform(-1.6, 1.6, shape).astype(dtype)
    flat = grid.reshape(-1)
    picks = rng.integers(0, flat.size, flat.size // 2)
    flat[picks] = rng.choice(np.array(SPECIAL, dtype=dtype), picks.size)
    return grid


CASES = [(rank, mode, padding, align, lead) for rank, mode, padding, align, lead in
         itertools.product((2, 3), MODES, PADDINGS, (False, True), ((), (3,)))
         if not (rank == 3 and mode == "bicubic")]


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, mode, padding, align, lead", CASES)
def test_shapes_and_values_match_torch(rank, mode, padding, align, lead):
    """Per sample, input (*lead, C, *spatial) and grid (*lead, *out, rank); torch sees the leading axes
    merged with the batch. float32 within 1e-5 (ATen's vectorized kernel fuses some products),
    float64 within 1e-12."""
    rng = np.random.default_rng(rank * 1000 + len(lead))
    layer = GridSample(mode, padding, align)
    for dtype, tolerance in ((np.float32, 1e-5), (np.float64, 1e-12)):
        for trial in range(3):
            spatial = tuple(int(n) for n in rng.integers(1, 6, rank))
            out = tuple(int(n) for n in rng.integers(1, 5, rank))
            x = rng.standard_normal((BATCH, *lead, 3, *spatial)).astype(dtype)
            grid = _grid(rng, (BATCH, *lead, *out, rank), dtype)
            merged = BATCH * math.prod(lead)
            expected = TF.grid_sample(torch.from_numpy(x.reshape(merged, 3, *spatial)),
                                      torch.from_numpy(grid.reshape(merged, *out, rank)), mode, padding, align)
            expected = expected.numpy().reshape(BATCH, *lead, 3, *out)
            figures = layer.merge((x.shape[1:], grid.shape[1:]))
            assert figures.output_shape == expected.shape[1:]
            got = _run(layer, x, grid)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


def _taps_read(mode: str, rank: int) -> int:
    """The input positions one output element at a generic interior point depends on, from autograd."""
    x = torch.randn(1, 1, *(8,) * rank, requires_grad=True)
    grid = torch.tensor([0.1234, -0.2718, 0.3141][:rank]).reshape(1, *(1,) * rank, rank)
    (gradient,) = torch.autograd.grad(TF.grid_sample(x, grid, mode, align_corners=False).sum(), x)
    return int((gradient != 0).sum())


@pytest.mark.needs_torch
@pytest.mark.parametrize("mode, rank", [("nearest", 2), ("bilinear", 2), ("bicubic", 2), ("nearest", 3),
                                        ("bilinear", 3)])
def test_no_macs_as_flop_counter_counts_and_flops_per_tap(mode, rank):
    """FlopCounterMode counts nothing for grid_sampler, forward or backward: no MACs. FLOPs follow
    interpolate's convention: t multiplications and t - 1 additions for the t taps an output reads."""
    x = torch.randn(BATCH, 3, *(5,) * rank, requires_grad=True)
    grid = (torch.rand(BATCH, *(4,) * rank, rank) * 2 - 1).requires_grad_()
    with FlopCounterMode(display=False) as counter:
        TF.grid_sample(x, grid, mode, align_corners=False).sum().backward()
    figures = GridSample(mode).merge((tuple(x.shape[1:]), tuple(grid.shape[1:])))
    assert counter.get_total_flops() == 0 == figures.macs and figures.params == 0
    taps = _taps_read(mode, rank)
    assert taps == {"nearest": 1, "bilinear": 2, "bicubic": 4}[mode] ** rank
    assert figures.flops == (2 * taps - 1 if taps > 1 else 0) * math.prod(figures.output_shape)


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_autograd_saves_the_input_and_the_grid(rank, needs):
    """grid_sampler_2d/3d save both tensors, whichever one needs a gradient."""
    x = torch.randn(BATCH, 3, *(5,) * rank, requires_grad=needs[0])
    grid = torch.rand(BATCH, *(4,) * rank, rank, requires_grad=needs[1])
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        TF.grid_sample(x, grid, align_corners=False)
    pointers = sorted(t.untyped_storage().data_ptr() for t in saved)
    assert pointers == sorted(t.untyped_storage().data_ptr() for t in (x, grid))
    use = Use((tuple(x.shape[1:]), tuple(grid.shape[1:])), (3, *(4,) * rank), BATCH, 4, needs, False)
    assert GridSample().saved(use) == [("input", 0), ("input", 1)]
    assert GridSample().saved(Use(use.inputs, use.output, BATCH, 4, (False, False), False)) == []
    assert GridSample().backward_macs(use, 0) == 0


def _lookup_model(rank: int, mode: str, padding: str, align: bool):
    """A grid made from the input (a 1x1 convolution, tanh, channels last) sampling a convolution of it."""
    conv = nn.Conv2d if rank == 2 else nn.Conv3d

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.offsets, self.volume = conv(2, rank, 1), conv(2, 3, 3, padding=1)

        def forward(self, x):
            grid = torch.tanh(self.offsets(x)).permute(0, *range(2, 2 + rank), 1)
            return TF.grid_sample(self.volume(x), grid, mode, padding, align)

    return Lookup()


def _lookup_document(rank: int, mode: str, padding: str, align: bool, spatial) -> dict:
    return {"input": [2, *spatial], "layers": [
        {"type": "conv", "name": "offsets", "out_channels": rank, "kernel_size": 1},
        {"type": "tanh", "name": "squashed"},
        {"type": "permute", "name": "grid", "dims": [0, *range(2, 2 + rank), 1]},
        {"type": "conv", "name": "volume", "from": "input", "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "grid_sample", "name": "lookup", "from": ["volume", "grid"], "mode": mode, "padding_mode": padding,
         "align_corners": align}]}


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, mode, padding, align", [(2, "bilinear", "zeros", True), (2, "bicubic", "border", False),
                                                        (3, "nearest", "reflection", False)])
@pytest.mark.parametrize("batch", [1, 3])
def test_saved_bytes_and_shapes_of_a_network_through_it(rank, mode, padding, align, batch):
    spatial = (6, 5) if rank == 2 else (4, 5, 3)
    model = _lookup_model(rank, mode, padding, align)
    x = torch.randn(batch, 2, *spatial)
    document = _lookup_document(rank, mode, padding, align, spatial)
    analysis = analyse(load_document(json.dumps({**document, "batch": batch})))
    assert analysis.output_shape == tuple(model(x).shape[1:])
    memory = training_memory(analysis)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, x)


@pytest.mark.needs_torch
@pytest.mark.parametrize("made", ["expand", "repeat"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_fixed_grid_over_the_batch_is_saved_as_pytorch_holds_it(made, batch):
    """A fixed sampling grid made for every sample by expand (one sample's storage every sample views,
    which grid_sample saves) or by repeat (a copy per sample): the saved bytes are autograd's, through
    --model, and the training step's MACs FlopCounterMode's over a forward and a backward."""
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc import from_torch
    from convcalc.engine.training import training_macs

    class Sampled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            rows, columns = torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 7), indexing="ij")
            grid = torch.stack([columns, rows], -1)[None]
            grid = grid.expand(y.shape[0], -1, -1, -1) if made == "expand" else grid.repeat(y.shape[0], 1, 1, 1)
            return TF.grid_sample(y, grid, align_corners=False)

    model = Sampled()
    x = torch.randn(batch, 3, 8, 8)
    analysis = analyse(from_torch(model, (3, 8, 8), batch=batch), receptive_fields=False)
    assert [r.type for r in analysis.layers if not r.counted] == []
    memory = training_memory(analysis)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, x)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    cost = training_macs(analysis)
    assert cost.exact and cost.training_macs == counter.get_total_flops() // 2


@pytest.mark.needs_torch
def test_a_fixed_input_expanded_over_the_batch_is_sampled_by_a_computed_grid():
    """The input, not the grid, fixed and expanded (a template a predicted grid samples): read as a copy
    per sample beside the grid, counted, the training step's MACs FlopCounterMode's."""
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc import from_torch
    from convcalc.engine.training import training_macs

    class Template(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)
            self.register_buffer("template", torch.randn(1, 2, 9, 9))

        def forward(self, x):
            grid = torch.tanh(self.conv(x)).permute(0, 2, 3, 1)
            return TF.grid_sample(self.template.expand(x.shape[0], -1, -1, -1), grid, align_corners=False)

    model = Template()
    x = torch.randn(3, 3, 8, 8)
    analysis = analyse(from_torch(model, (3, 8, 8), batch=3), receptive_fields=False)
    assert [r.type for r in analysis.layers if not r.counted] == []
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    assert training_macs(analysis).training_macs == counter.get_total_flops() // 2


@pytest.mark.needs_torch
def test_roofline_moves_the_input_the_grid_and_the_output():
    document = {"input": [3, 6, 5], "batch": 2, "layers": [
        {"type": "constant", "name": "grid", "shape": [4, 7, 2]},
        {"type": "grid_sample", "from": ["input", "grid"], "align_corners": True}]}
    analysis = analyse(load_document(json.dumps(document)))
    x, grid = torch.randn(2, 3, 6, 5), torch.rand(2, 4, 7, 2)
    y = TF.grid_sample(x, grid, align_corners=True)
    moved = sum(t.numel() * t.element_size() for t in (x, grid, y))
    assert roofline(analysis).layers[-1].bytes == moved


def _torch_outcome(source, grid, arguments, lead=0):
    """torch's output shape per sample, or its refusal's message; ``lead`` leading axes per sample are
    merged with the batch, as PyTorch sees them."""
    merged_source = (BATCH * math.prod(source[:lead]), *source[lead:])
    merged_grid = (BATCH * math.prod(grid[:lead]), *grid[lead:])
    try:
        y = TF.grid_sample(torch.zeros(merged_source), torch.zeros(merged_grid), **arguments)
    except (RuntimeError, ValueError) as err:
        return str(err).splitlines()[0]
    return (*source[:lead], *y.shape[1:])


REFUSALS = [  # (input, grid, arguments, leading axes): per sample
    ((3, 4, 5), (6, 7, 3), {}, 0),  # a 3-D grid for a 2-D input
    ((3, 4, 5, 6), (6, 7, 2), {}, 0),  # a 2-D grid for a 3-D input
    ((3, 4, 5), (6, 7, 1), {}, 0),
    ((3, 4, 5), (7, 2), {}, 0),  # too few output sizes
    ((3, 4), (5, 1), {}, 0),  # one spatial axis: no 3-D grid_sample
    ((3, 4, 5, 6, 7), (1, 2, 3, 4, 4), {}, 0),  # four spatial axes
    ((3, 4, 5, 6), (1, 2, 3, 3), {"mode": "bicubic"}, 0),  # bicubic is 2-D only
    ((3, 0, 5), (6, 7, 2), {}, 0),  # an empty spatial axis
    ((4, 3, 4, 5), (5, 6, 7, 2), {}, 1),  # leading axes that differ
    ((3, 4, 5), (6, 7, 2), {"mode": "linear"}, 0),
    ((3, 4, 5), (6, 7, 2), {"padding_mode": "circular"}, 0),
]
ACCEPTED = [
    ((3, 4, 5), (6, 7, 2), {"mode": "bicubic", "padding_mode": "reflection"}, 0),
    ((3, 4, 5, 6), (1, 2, 3, 3), {"mode": "nearest"}, 0),
    ((4, 1, 9, 9), (4, 3, 3, 2), {"align_corners": True}, 1),  # RAFT's lookup, batch merged with h*w
    ((0, 4, 5), (6, 7, 2), {}, 0),  # no channels: an empty output, as torch gives
    ((3, 4, 5), (0, 7, 2), {}, 0),
]


@pytest.mark.needs_torch
@pytest.mark.parametrize("source, grid, arguments, lead", REFUSALS + ACCEPTED)
def test_what_torch_refuses_is_refused_with_the_same_shapes_otherwise(source, grid, arguments, lead):
    expected = _torch_outcome(source, grid, {"align_corners": False, **arguments}, lead)
    try:
        figures = GridSample(**{k: v for k, v in arguments.items()}).merge((source, grid))
    except ConvcalcError as err:
        assert isinstance(expected, str), (source, grid, err.message)
        assert "\n" not in err.message and err.hint
        return
    assert figures.output_shape == expected


def _document(source, grid, arguments) -> str:
    return json.dumps({"input": list(source), "layers": [
        {"type": "constant", "name": "grid", "shape": list(grid)},
        {"type": "grid_sample", "from": ["input", "grid"], **arguments}]})


@pytest.mark.needs_torch
@pytest.mark.parametrize("source, grid, arguments, lead", REFUSALS)
def test_refusals_on_the_command_line(source, grid, arguments, lead):
    """convcalc shape on a document with the two branches: exit 2, one error line naming the layer and
    the cause, a hint, no traceback."""
    assert isinstance(_torch_outcome(source, grid, {"align_corners": False, **arguments}, lead), str)
    result = runner.invoke(app, ["shape", "-f", "-"], input=_document(source, grid, arguments))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    assert any(line.startswith("hint:") for line in lines)
    field = next((name for name in ("mode", "padding_mode") if name in arguments), None)
    if field is not None:  # an argument's value: the argument named
        assert f"{field}=" in lines[0]


@pytest.mark.needs_torch
def test_the_command_line_reads_it_as_torch_does():
    source, grid, arguments, _ = ACCEPTED[0]
    result = runner.invoke(app, ["shape", "-f", "-", "--json"], input=_document(source, grid, arguments))
    assert result.exit_code == 0, result.output
    layer = json.loads(result.stdout)["layers"][-1]
    assert tuple(layer["output_shape"]) == _torch_outcome(source, grid, {"align_corners": False, **arguments})
    assert layer["type"] == "GridSample" and layer["macs"] == 0 and layer["params"] == 0


def _changed_outputs(x, grid, position, arguments) -> set:
    """The output elements that change when one input element changes (torch, merged batch)."""
    base = TF.grid_sample(x, grid, **arguments)
    moved = x.clone()
    moved[position] += 1000.0
    return {tuple(i) for i in (TF.grid_sample(moved, grid, **arguments) != base).nonzero().tolist()}


@pytest.mark.needs_torch
def test_receptive_field_against_a_brute_force():
    """Which outputs change when one input element changes, over grids that point every output at
    each input position in turn and one that spans the input: an output may read any position of
    its sample's channel (the whole input, as convcalc says), never another channel or leading index."""
    lead, channels, spatial, out = 2, 2, (4, 3), (2, 3)
    x = torch.randn(lead, channels, *spatial)
    arguments = {"mode": "nearest", "align_corners": True}
    span = torch.stack(torch.meshgrid(torch.linspace(-1, 1, out[1]), torch.linspace(-1, 1, out[0]),
                                      indexing="xy"), -1)
    grids = [span.expand(lead, *out, 2)]
    for h, w in itertools.product(range(spatial[0]), range(spatial[1])):
        point = torch.tensor([2 * w / (spatial[1] - 1) - 1, 2 * h / (spatial[0] - 1) - 1])
        grids.append(point.expand(lead, *out, 2))
    fields: dict = {}
    for grid in grids:
        for position in itertools.product(range(lead), range(channels), *map(range, spatial)):
            for changed in _changed_outputs(x, grid, position, arguments):
                assert changed[:2] == position[:2]  # the same leading index and channel
                fields.setdefault(changed, set()).add(position[2:])
    extents = {tuple(max(p[a] for p in field) - min(p[a] for p in field) + 1 for a in range(2))
               for field in fields.values()}
    assert len(fields) == lead * channels * math.prod(out) and extents == {spatial}
    document = {"input": [lead, channels, *spatial], "layers": [
        {"type": "constant", "name": "grid", "shape": [lead, *out, 2]},
        {"type": "grid_sample", "from": ["input", "grid"], **arguments}]}
    report = analyse(load_document(json.dumps(document))).layers[-1]
    assert tuple(report.receptive_field.size) == (1, *spatial)  # per channel, the whole input


@pytest.mark.needs_torch
def test_each_output_reads_its_own_grid_point():
    """The input sampled from a fixed volume at a grid made from it (a 1x1 convolution, tanh, channels
    last): autograd finds each output element depending on the one input position its grid point
    comes from (1x1), as convcalc's field along the grid says."""
    spatial = (6, 5)
    document = {"input": [2, *spatial], "layers": [
        {"type": "constant", "name": "volume", "shape": [3, 4, 4]},
        {"type": "conv", "name": "offsets", "from": "input", "out_channels": 2, "kernel_size": 1},
        {"type": "tanh", "name": "squashed"},
        {"type": "permute", "name": "grid", "dims": [0, 2, 3, 1]},
        {"type": "grid_sample", "from": ["volume", "grid"]}]}
    report = analyse(load_document(json.dumps(document))).layers[-1]
    offsets = nn.Conv2d(2, 2, 1)
    x = torch.randn(1, 2, *spatial, requires_grad=True)
    y = TF.grid_sample(torch.randn(1, 3, 4, 4), torch.tanh(offsets(x)).permute(0, 2, 3, 1), align_corners=False)
    assert tuple(report.output_shape) == tuple(y.shape[1:])
    largest = [0, 0]
    for index in itertools.product(*map(range, y.shape[1:])):
        (gradient,) = torch.autograd.grad(y[(0, *index)], x, retain_graph=True)
        positions = gradient[0].abs().sum(0).nonzero()
        for axis in range(2):
            largest[axis] = max(largest[axis], int(positions[:, axis].max() - positions[:, axis].min()) + 1)
    assert tuple(report.receptive_field.size) == tuple(largest) == (1, 1)


def test_spellings_explain_and_documents():
    assert parse_layer("grid_sample:mode=nearest,align_corners=true") == GridSample("nearest", align_corners=True)
    assert parse_layer("gridsample:padding_mode=Border") == GridSample(padding_mode="border")
    assert parse_constructor("GridSample(mode='bicubic')") == GridSample("bicubic")
    with pytest.raises(ConvcalcError, match="mode"):
        parse_layer("grid_sample:mode=trilinear")
    figures = GridSample(align_corners=True).merge(((49, 1, 9, 9), (49, 3, 3, 2)))
    assert figures.output_shape == (49, 1, 3, 3) and figures.summary == "bilinear zeros align_corners, 49x1x9x9 at 3x3"
    document = {"input": [3, 6, 5], "layers": [{"type": "constant", "name": "grid", "shape": [4, 7, 2]},
                                               {"type": "grid_sample", "from": ["input", "grid"]}]}
    text = "\n".join(explain(load_document(json.dumps(document))))
    assert "FLOPs: 7 per output element (2 taps per spatial axis, weighted and summed) = 588" in text
