"""convcalc compare: every variant through the engine, against torch modules, the
closed form of seed 002, the seeds' worked examples, and the CLI."""

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc import Conv, Network, analyse
from convcalc.cli import app
from convcalc.verbs.compare import VARIANTS, compare

runner = CliRunner()


def layer_by_layer_totals(input_shape, layers):
    """Each layer analysed on its own, shapes chained by hand, figures summed."""
    shape, params, macs, flops = tuple(input_shape), 0, 0, 0
    for layer in layers:
        report = analyse(Network(shape, (layer,))).layers[0]
        params, macs, flops, shape = params + report.params, macs + report.macs, flops + report.flops, report.output_shape
    return shape, params, macs, flops


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    cin = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]))
    cout = draw(st.sampled_from([1, 2, 4, 6, 8, 16, 24]))
    sizes = tuple(draw(st.integers(5, 12)) for _ in range(rank))
    k = draw(st.integers(1, 5))
    stride = draw(st.integers(1, 2))
    padding = draw(st.one_of(st.integers(0, 2), st.just("same") if stride == 1 else st.integers(0, 2)))
    layer = Conv(cout, k, stride, padding, draw(st.integers(1, 2)), bias=draw(st.booleans()))
    return (cin, *sizes), layer


@settings(max_examples=300)
@given(conv_cases())
def test_every_variant_is_the_sum_of_its_layers_with_the_standard_output(case):
    input_shape, layer = case
    try:
        result = compare(input_shape, layer)
    except Exception as err:  # the standard layer itself must be valid
        from convcalc import ConvcalcError

        assert isinstance(err, ConvcalcError)
        return
    assert [r.variant.name for r in result.results] == list(VARIANTS)
    standard = result.standard.analysis
    for r in result.results:
        if r.analysis is None:
            assert r.variant.reason
            continue
        shape, params, macs, flops = layer_by_layer_totals(input_shape, r.variant.layers)
        assert shape == standard.output_shape
        assert (params, macs, flops) == (r.analysis.totals.params, r.analysis.totals.macs, r.analysis.totals.flops)
        assert r.ratio_macs == Fraction(macs, standard.totals.macs)
        # biases follow the given layer
        assert all(l.bias == layer.bias for l in r.variant.layers)


@settings(max_examples=300)
@given(conv_cases())
def test_depthwise_separable_ratio_is_the_closed_form(case):
    input_shape, layer = case
    try:
        separable = compare(input_shape, layer).results[1]
    except Exception:
        return
    k = layer.kernel_size
    assert separable.closed_form == Fraction(1, layer.out_channels) + Fraction(1, k ** (len(input_shape) - 1))
    assert separable.ratio_macs == separable.closed_form


def test_seed_002_depthwise_separable_example():
    # 3-channel 5x5 input, 3x3 depthwise then 1x1 pointwise to 4 channels: 1/4 + 1/9
    result = compare((3, 5, 5), Conv(4, 3, bias=False))
    separable = result.results[1]
    assert separable.analysis.output_shape == (4, 3, 3)
    assert separable.ratio_macs == Fraction(1, 4) + Fraction(1, 9)


def test_seed_000_spatially_separable_example():
    # a 3x3 kernel on a 5x5 image: 81 multiplications, or 45 + 27 as 3x1 then 1x3
    result = compare((1, 5, 5), Conv(1, 3, bias=False))
    assert result.standard.analysis.totals.macs == 81
    assert [r.macs for r in result.results[3].analysis.layers] == [45, 27]
    assert result.results[3].analysis.totals.params == 6


def test_not_applicable_variants_stay_with_a_reason():
    result = compare((3, 100), Conv(8, 3))
    reasons = {r.variant.name: r.variant.reason for r in result.results}
    assert "single spatial axis" in reasons["spatially_separable"]
    assert "divides both 3 and 8" in reasons["grouped"]
    assert reasons["shufflenet_unit"] and reasons["depthwise_separable"] is None


@pytest.mark.needs_torch
def test_params_and_shapes_equal_torch_modules():
    import torch
    from torch import nn

    for input_shape, layer in [((32, 28, 28), Conv(64, 3, padding=1)), ((16, 9, 10, 11), Conv(32, 3, 2, 1, bias=False)),
                               ((12, 40), Conv(24, 5, padding="same"))]:
        result = compare(input_shape, layer)
        rank = len(input_shape) - 1
        expected = None
        for r in result.results:
            if r.analysis is None:
                continue
            modules, channels = [], input_shape[0]
            for spec in r.variant.layers:
                modules.append(getattr(nn, f"Conv{rank}d")(channels, spec.out_channels, spec.kernel_size, spec.stride,
                                                           spec.padding, spec.dilation, spec.groups, spec.bias))
                channels = spec.out_channels
            model = nn.Sequential(*modules)
            shape = tuple(model(torch.zeros(1, *input_shape)).shape[1:])
            expected = expected or shape
            assert shape == expected == r.analysis.output_shape
            assert r.analysis.totals.params == sum(p.numel() for p in model.parameters())


def test_cli_table_and_options():
    token = runner.invoke(app, ["compare", "32x56x56", "conv:64,k=3,p=1"])
    options = runner.invoke(app, ["compare", "32x56x56", "--out", "64", "-k", "3", "-p", "1"])
    assert token.exit_code == options.exit_code == 0
    assert token.stdout == options.stdout
    lines = token.stdout.splitlines()
    assert lines[0].split()[:2] == ["variant", "layers"]
    assert lines[2].startswith("depthwise separable") and lines[2].split()[-2:] == ["0.1267", "0.1267"]
    assert "every convolution of a variant has a bias" in token.stderr  # a note: on stderr, the data alone on stdout
    assert "note" not in token.stdout and "bias" not in token.stdout


def test_cli_json_contract():
    result = runner.invoke(app, ["compare", "3x224", "conv:8,k=3,bias=false", "--json"])
    data = json.loads(result.stdout)
    assert data["schema"] == "convcalc.compare/1" and data["input_shape"] == [3, 224] and data["bias"] is False
    assert [v["name"] for v in data["variants"]] == list(VARIANTS)
    for v in data["variants"]:
        assert {"name", "applicable", "layers", "params", "macs", "flops", "ratio_macs"} <= set(v)
        assert v["applicable"] == ("reason" not in v)
    assert data["variants"][0]["ratio_macs"] == 1.0
    assert data["variants"][1]["closed_form_ratio"] == pytest.approx(1 / 8 + 1 / 3)


def test_cli_run_adds_times():
    data = json.loads(runner.invoke(app, ["compare", "8x16x16", "conv:16,k=3,p=1", "--run", "--json"]).stdout)
    timed = [v for v in data["variants"] if v["applicable"]]
    assert all(v["run"]["seconds"] > 0 for v in timed) and timed[0]["run"]["ratio"] == 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "32x56x56", "conv:64,k=3", "--out", "8"], "not both"),
        (["compare", "32x56x56"], "compare needs a layer"),
        (["compare", "32x56x56", "convT:64,k=3"], "compare takes a convolution"),
        (["compare", "32x56x56", "--out", "64", "-k", "3", "-s", "0"], "stride must be positive"),
    ],
)
def test_cli_errors(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.stderr
