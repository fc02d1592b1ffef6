"""torch.nn.Unfold / F.unfold (im2col) and torch.nn.Fold / F.fold (col2im) against PyTorch: the output
shapes and refusals torch gives over kernel, dilation, padding and stride (pairs too), the NumPy
backend's values against torch's, no MACs as FlopCounterMode counts none, fold's additions against a
brute-force count, what autograd saves (nothing: each one's backward is the other, which needs only
sizes), refusals on the command line, and receptive fields that hold the brute-force ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc import ConvcalcError, analyse_tokens, parse_layer
from convcalc.cli import app
from convcalc.engine.errors import BatchAxisError
from convcalc.engine.layers import Fold, Unfold
from convcalc.engine.memory import training_memory
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
# The argument torch's message starts with, for the checks ATen makes before it looks at the input.
TORCH_FIELDS = {"kernel size": "kernel_size", "dilation": "dilation", "padding": "padding", "stride": "stride",
                **{f"It is expected {name}": name for name in ("output_size", "kernel_size", "dilation", "padding",
                                                               "stride")}}


def _run(layer, x: np.ndarray) -> np.ndarray:
    return layer.prepare(Runner(np.random.default_rng(0), x.dtype), x)(x)


def _torch(x, arguments):
    """F.unfold's output, or the message of its refusal."""
    try:
        return TF.unfold(x, **arguments)
    except (RuntimeError, IndexError) as err:
        return str(err).splitlines()[0]


def _value(draw, low, high):
    """An int from ``low`` (the least torch takes) to ``high``, or a pair; now and then one below ``low``
    or a tuple of another length, which torch refuses."""
    def one():
        return low - 1 if draw(st.integers(0, 15)) == 0 else draw(st.integers(low, high))

    if draw(st.booleans()):
        return one()
    return tuple(one() for _ in range(2 if draw(st.integers(0, 15)) else draw(st.sampled_from([1, 3]))))


@st.composite
def unfold_case(draw):
    rank = draw(st.sampled_from([3] * 9 + [2, 1, 4]))  # per sample: (C, H, W) mostly
    shape = tuple(draw(st.integers(0 if draw(st.integers(0, 15)) == 0 else 1, 9)) for _ in range(rank))
    arguments = {"kernel_size": _value(draw, 1, 5), "dilation": _value(draw, 1, 3),
                 "padding": _value(draw, 0, 3), "stride": _value(draw, 1, 3)}
    return shape, arguments


@pytest.mark.needs_torch
@settings(max_examples=400, deadline=None)
def _refused_as_torch_refuses(err, expected, shape, arguments) -> None:
    """convcalc's refusal where PyTorch refuses too (``expected`` is its message), on one line, naming the
    argument PyTorch's message names."""
    assert isinstance(expected, str), (shape, arguments, err.message)
    assert "\n" not in err.message
    argument = next((field for start, field in TORCH_FIELDS.items() if expected.startswith(start)), None)
    if argument is not None:  # an argument's check: the same argument named
        assert err.field == argument, (expected, err.message)


@given(unfold_case())
def test_shapes_values_and_refusals_match_torch(case):
    shape, arguments = case
    x = torch.randn(BATCH, *shape)
    expected = _torch(x, arguments)
    layer = Unfold(**arguments)
    try:
        figures = layer.infer(shape)
    except BatchAxisError:
        assert len(shape) == 2  # torch would take the batch for the channels: refused on purpose
        return
    except ConvcalcError as err:
        _refused_as_torch_refuses(err, expected, shape, arguments)
        return
    assert not isinstance(expected, str), (shape, arguments, expected)
    assert figures.output_shape == tuple(expected.shape[1:])
    assert (figures.params, figures.macs, figures.flops) == (0, 0, 0)
    np.testing.assert_array_equal(_run(layer, x.numpy()), expected.numpy())  # copies: exactly equal


CASES = [  # (shape, arguments), non-square among them
    ((2, 46, 62), {"kernel_size": 3, "padding": 1}),  # RAFT's upsampling of its flow
    ((3, 9, 7), {"kernel_size": (3, 2), "dilation": (1, 2), "padding": (2, 0), "stride": (2, 3)}),
    ((1, 5, 11), {"kernel_size": (1, 4), "stride": (1, 2)}),
    ((4, 8, 8), {"kernel_size": 2, "stride": 2}),  # blocks that tile the input
    ((2, 6, 10), {"kernel_size": (5, 3), "dilation": (2, 3), "padding": (3, 1)}),
    ((3, 4, 4), {"kernel_size": 6, "padding": 1}),  # one block larger than the input
]


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, arguments", CASES)
def test_flop_counter_counts_nothing_and_the_module_agrees(shape, arguments):
    module = nn.Unfold(**arguments)
    x = torch.randn(BATCH, *shape)
    with FlopCounterMode(display=False) as counter:
        expected = module(8 * x)
    with FlopCounterMode(display=False) as alone:
        TF.unfold(x, **arguments)
    assert alone.get_total_flops() == 0
    layer = parse_layer(repr(module))  # print(model)'s text, read back
    assert layer == Unfold(**arguments)
    analysis = analyse_tokens("x".join(map(str, shape)), "mul:scalar=8", _token(arguments), batch=BATCH)
    assert analysis.output_shape == tuple(expected.shape[1:])
    assert analysis.totals.macs * 2 == counter.get_total_flops() == 0
    assert analysis.layers[-1].flops == 0 and analysis.layers[-1].params == 0
    np.testing.assert_array_equal(_run(layer, 8 * x.numpy()), expected.numpy())


def _token(arguments) -> str:
    def text(value):
        return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)

    return "unfold:" + ",".join(f"{key}={text(value)}" for key, value in arguments.items())


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, arguments", CASES)
def test_autograd_saves_nothing_for_it(shape, arguments):
    x = torch.randn(BATCH, *shape, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        TF.unfold(x, **arguments)
    assert saved == []
    assert Unfold(**arguments).saved(None) == []


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
def test_saved_bytes_of_a_network_through_unfold(batch):
    """A convolution, the unfold, then a linear layer over its blocks: autograd saves the convolution's
    input and the unfold's output (the linear layer's input), nothing for the unfold itself."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Unfold((3, 2), padding=(1, 0), stride=(1, 2)),
                          nn.Linear(32, 5))
    x = torch.randn(batch, 2, 8, 8)
    analysis = analyse_tokens("2x8x8", "conv:4,k=3,p=1", "unfold:3x2,p=1x0,s=1x2", "linear:5", batch=batch)
    assert analysis.output_shape == tuple(model(x).shape[1:])
    memory = training_memory(analysis)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, x)


@pytest.mark.needs_torch
@pytest.mark.parametrize("token, field", [
    ("unfold:0", "kernel_size"),
    ("unfold:3x-1", "kernel_size"),
    ("unfold:3,d=0", "dilation"),
    ("unfold:3,p=-1", "padding"),
    ("unfold:3,s=0", "stride"),
    ("unfold:9", "kernel_size"),
    ("unfold:3,d=4", "kernel_size"),
    ("unfold:3x3x3", "kernel_size"),
    ("unfold:3,p=1x2x3", "padding"),
])
def test_refusals_on_the_command_line(token, field):
    """What torch refuses for a 2x8x8 sample: exit 2, one error line naming the argument, a hint."""
    arguments = parse_layer(token)
    expected = _torch(torch.randn(BATCH, 2, 8, 8), {name: getattr(arguments, name) for name in
                                                    ("kernel_size", "dilation", "padding", "stride")})
    assert isinstance(expected, str), token
    result = runner.invoke(app, ["shape", "2x8x8", token])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and field in lines[0] and "Traceback" not in result.stderr
    assert any(line.startswith("hint:") for line in lines)


def test_inputs_unfold_refuses():
    with pytest.raises(BatchAxisError, match="batch as its channels"):
        Unfold(3).infer((8, 8))  # torch would read (batch, 8, 8) as one sample of batch channels
    for shape in [(8,), (1, 2, 8, 8), (0, 8, 8), (2, 0, 8)]:
        with pytest.raises(ConvcalcError, match="3D or 4D"):
            Unfold(3).infer(shape)
    result = runner.invoke(app, ["shape", "8x8", "unfold:3"])
    assert result.exit_code == 2 and result.stderr.startswith("error:") and "channel" in result.stderr


def _brute_force_field(shape, arguments) -> tuple[int, int]:
    """The largest extent, per axis, of the input positions one output element depends on: from
    autograd, one output element at a time."""
    x = torch.randn(1, *shape, requires_grad=True)
    y = TF.unfold(x, **arguments)
    largest = [0, 0]
    for r in range(y.shape[1]):
        for column in range(y.shape[2]):
            (grad,) = torch.autograd.grad(y[0, r, column], x, retain_graph=True)
            positions = grad[0].abs().sum(0).nonzero()
            if len(positions):
                for axis in range(2):
                    extent = int(positions[:, axis].max() - positions[:, axis].min()) + 1
                    largest[axis] = max(largest[axis], extent)
    return tuple(largest)


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, arguments", CASES[1:4])
def test_receptive_field_holds_the_brute_force_one(shape, arguments):
    """Height and width merge into the blocks axis, which convcalc does not follow (as after a flatten):
    the field is the whole input, which holds every field autograd finds; the layer says so."""
    analysis = analyse_tokens("x".join(map(str, shape)), _token(arguments))
    report = analysis.layers[-1]
    assert report.receptive_field.size == shape[1:]
    assert all(f <= r for f, r in zip(_brute_force_field(shape, arguments), report.receptive_field.size))
    assert any("whole input" in note for note in report.notes)


def test_spellings_and_explain():
    assert parse_layer("unfold:3,p=1") == Unfold(3, padding=1)
    assert parse_layer("Unfold(kernel_size=(3, 2), dilation=1, padding=0, stride=2)") == Unfold((3, 2), stride=2)
    figures = Unfold((3, 2), dilation=(1, 2), padding=(2, 0), stride=(2, 3)).infer((3, 9, 7))
    assert figures.output_shape == (18, 12) and figures.summary == "k=3x2 d=1x2 p=2x0 s=2x3"
    text = "\n".join(explain(analyse_tokens("2x8x8", "unfold:3,p=1,s=2").network))
    assert "H blocks: floor((8 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 4" in text
    assert "rows: 2 channels x 3 x 3 = 18; columns: 4 x 4 = 16" in text
    assert parse_layer("fold:8x6,3,p=1,s=2") == Fold((8, 6), 3, padding=1, stride=2)
    text = "\n".join(explain(analyse_tokens("18x12", "fold:8x6,3,p=1,s=2").network))
    assert "W blocks: floor((6 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3" in text
    assert "blocks: 4 x 3 = 12; channels: 18 rows / (3 x 3) = 2" in text
    text = "\n".join(explain(analyse_tokens("18x16", "fold:8,3,p=1,s=2", batch=3).network))
    brute = _added((18, 16), {"output_size": 8, "kernel_size": 3, "dilation": 1, "padding": 1, "stride": 2})
    assert ("FLOPs: 2 channels x 11 x 11 (block, tap) pairs landing inside the output (height x width), one "
            f"addition each = {brute}, x batch 3 = {3 * brute}") in text


@st.composite
def fold_case(draw):
    """Columns as torch unfolds them from an image of the output size (so the blocks match), now and then
    with a block or a row too many, or arguments torch refuses."""
    size = tuple(draw(st.integers(1, 9)) for _ in range(2))
    arguments = {"kernel_size": _value(draw, 1, 4), "dilation": _value(draw, 1, 3),
                 "padding": _value(draw, 0, 3), "stride": _value(draw, 1, 3)}
    channels = draw(st.integers(1, 3))
    columns = _torch(torch.zeros(1, channels, *size), arguments)
    if isinstance(columns, str):  # no blocks fit: any columns
        shape = (draw(st.integers(1, 18)), draw(st.integers(1, 20)))
    else:
        shape = tuple(columns.shape[1:])
        if not draw(st.integers(0, 5)):
            shape = (shape[0] + draw(st.integers(0, 1)), shape[1] + draw(st.integers(0, 1)))
    if not draw(st.integers(0, 15)):
        shape = draw(st.sampled_from([(shape[1],), (1, *shape), (0, shape[1])]))
    output_size = size if draw(st.integers(0, 7)) else draw(st.sampled_from([size[0], (size[0], 0), (5, 5, 5)]))
    return shape, {"output_size": output_size, **arguments}


def _added(shape, arguments) -> int:
    """Fold's additions by brute force: every (row, block) value whose position lands in the output."""
    size, kernel, dilation, padding, stride = (
        (v, v) if isinstance(v, int) else v for v in (arguments[name] for name in
                                                      ("output_size", "kernel_size", "dilation", "padding", "stride")))
    counts = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, d, p, s in zip(size, kernel, dilation, padding, stride)]
    inside = 0
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            for a in range(counts[0]):
                for b in range(counts[1]):
                    h, w = a * stride[0] - padding[0] + i * dilation[0], b * stride[1] - padding[1] + j * dilation[1]
                    inside += 0 <= h < size[0] and 0 <= w < size[1]
    return shape[0] // (kernel[0] * kernel[1]) * inside


@pytest.mark.needs_torch
@settings(max_examples=300, deadline=None)
@given(fold_case())
def test_fold_shapes_values_flops_and_refusals_match_torch(case):
    shape, arguments = case
    x = torch.randn(BATCH, *shape)
    try:
        expected = TF.fold(x, **arguments)
    except (RuntimeError, IndexError) as err:
        expected = str(err).splitlines()[0]
    layer = Fold(**arguments)
    try:
        figures = layer.infer(shape)
    except BatchAxisError:
        assert len(shape) == 1  # torch would take the batch for the rows: refused on purpose
        return
    except ConvcalcError as err:
        _refused_as_torch_refuses(err, expected, shape, arguments)
        return
    assert not isinstance(expected, str), (shape, arguments, expected)
    assert figures.output_shape == tuple(expected.shape[1:])
    assert (figures.params, figures.macs) == (0, 0) and figures.flops == _added(shape, arguments)
    # the same additions in the same order (tap by tap) as col2im: the same float32 sums, bit for bit
    np.testing.assert_array_equal(_run(layer, x.numpy()), expected.numpy())


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, arguments", CASES)
def test_fold_of_unfold_counts_nothing_and_saves_nothing(shape, arguments):
    """Unfold then fold (the image back, each value times how many blocks hold it), as torch runs it."""
    image = "x".join(map(str, shape))
    fold = dict(output_size=shape[1:], **arguments)
    module = nn.Sequential(nn.Unfold(**arguments), nn.Fold(**fold))
    x = torch.randn(BATCH, *shape, requires_grad=True)
    saved = []
    with FlopCounterMode(display=False) as counter, \
            torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        expected = module(x)
    assert counter.get_total_flops() == 0 and saved == []
    assert parse_layer(repr(module[1])) == Fold(**fold)
    assert Fold(**fold).saved(None) == []
    analysis = analyse_tokens(image, _token(arguments), _token(fold).replace("unfold:", "fold:"), batch=BATCH)
    assert analysis.output_shape == tuple(expected.shape[1:]) and analysis.totals.macs == 0
    assert analysis.layers[-1].receptive_field.size == shape[1:]  # whole, as after a flatten: an upper bound
    columns = _run(Unfold(**arguments), x.detach().numpy())
    np.testing.assert_array_equal(_run(Fold(**fold), columns), expected.detach().numpy())


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, token, field", [
    ("18x16", "fold:8,0", "kernel_size"),
    ("18x16", "fold:8,3,s=0,d=0", "stride"),  # col2im checks stride before dilation
    ("18x16", "fold:8,3,d=0,p=-1", "dilation"),
    ("18x16", "fold:8x8x8,3", "output_size"),
    ("18x16", "fold:8,3,p=1x1x1", "padding"),
    ("18x16", "fold:8,2", "kernel_size"),  # 18 rows are not a multiple of 2 x 2
    ("18x16", "fold:10,3,p=1,s=2", "output_size"),  # 5 x 5 blocks, not 16
    ("9x1", "fold:1,3", "output_size"),  # -1 x -1 blocks: their product matches, their count is too small
    ("9x1", "fold:0,3,p=1", "output_size"),  # 0 x 0 blocks
    ("9x4", "fold:0,3,p=2", "output_size"),  # 2 x 2 blocks, of an empty output
])
def test_fold_refusals_on_the_command_line(shape, token, field):
    expected = _torch_fold(parse_layer(token), tuple(map(int, shape.split("x"))))
    assert isinstance(expected, str), token
    result = runner.invoke(app, ["shape", shape, token])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and field in lines[0] and "Traceback" not in result.stderr


def _torch_fold(layer, shape):
    arguments = {name: getattr(layer, name) for name in ("output_size", "kernel_size", "dilation", "padding", "stride")}
    try:
        return TF.fold(torch.randn(BATCH, *shape), **arguments)
    except (RuntimeError, IndexError) as err:
        return str(err).splitlines()[0]


@pytest.mark.needs_torch
def test_unfold_and_fold_are_read_from_a_model():
    """F.unfold and F.fold in a captured model (ATen's im2col and col2im): read as Unfold and Fold,
    shapes and MACs as PyTorch's, saved bytes as autograd's."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    class Blocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            columns = torch.nn.functional.unfold(self.conv(x), 3, padding=1, stride=(1, 2))
            return torch.nn.functional.fold(columns * 2, (6, 7), 3, padding=1, stride=(1, 2))

    model, shape = Blocks().eval(), (2, 6, 7)
    analysis = analyse(from_torch(model, shape, batch=3))
    assert [r.type for r in analysis.layers] == ["Conv2d", "Unfold", "Mul", "Fold"]
    assert analysis.output_shape == tuple(model(torch.zeros(2, *shape)).shape[1:])
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(3, *shape))
    assert analysis.totals.macs == counter.get_total_flops() // 2
    memory = training_memory(analysis)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(model, torch.randn(3, *shape))
