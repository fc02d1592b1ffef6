"""convcalc solve: solutions against brute-force enumeration through the engine,
TensorFlow's SAME, undoing a downsampling, input sizes, receptive-field plans, CLI."""

import json
from itertools import product
from math import ceil

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc import ConvcalcError, Network, analyse, parse_layer
from convcalc.cli import app
from convcalc.readers.tokens import split_token
from convcalc.presets import load_preset
from convcalc.verbs.plan import plan_receptive_field, solve_input
from convcalc.verbs.solve import solve, template_of

runner = CliRunner()
SHORT = {"kernel_size": "k", "stride": "s", "padding": "p", "dilation": "d", "output_padding": "op"}


def brute_force(input_shape, kind, known, unknown_ranges, target):
    """Every assignment, built as an ordinary token and analysed: the ones giving the target."""
    names = list(unknown_ranges)
    found = set()
    for values in product(*(range(lo, hi + 1) for lo, hi in unknown_ranges.values())):
        arguments = {**known, **dict(zip(names, values))}
        token = kind + "," + ",".join(f"{SHORT.get(k, k)}={v}" for k, v in arguments.items())
        try:
            out = analyse(Network(input_shape, (parse_layer(token.replace(",", ":", 1)),))).output_shape
        except ConvcalcError:
            continue
        if out == target:
            found.add(tuple(values))
    return found


@st.composite
def problems(draw):
    kind = draw(st.sampled_from(["conv:4", "convT:4", "maxpool", "avgpool"]))
    fields = ["kernel_size", "stride", "padding", "dilation"] if kind != "avgpool" else ["kernel_size", "stride", "padding"]
    if kind == "convT:4":
        fields.append("output_padding")
    unknown = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    ranges = {"kernel_size": (1, 5), "stride": (1, 3), "padding": (0, 3), "dilation": (1, 3), "output_padding": (0, 2)}
    known = {f: draw(st.integers(*ranges[f])) for f in fields if f not in unknown}
    size = draw(st.integers(3, 14))
    return kind, known, {f: ranges[f] for f in unknown}, (2, size, size)


@settings(max_examples=150)
@given(problems(), st.data())
def test_solutions_equal_brute_force(problem, data):
    kind, known, unknown, input_shape = problem
    # pick a reachable target by evaluating one random assignment
    pick = {f: data.draw(st.integers(lo, hi)) for f, (lo, hi) in unknown.items()}
    token = kind + "," + ",".join(f"{SHORT[k]}={v}" for k, v in {**known, **pick}.items())
    try:
        target = analyse(Network(input_shape, (parse_layer(token.replace(",", ":", 1)),))).output_shape
    except ConvcalcError:
        return
    written = kind + "," + ",".join([f"{SHORT[k]}={v}" for k, v in known.items()] + [f"{SHORT[k]}=?" for k in unknown])
    template = template_of(*split_token(written.replace(",", ":", 1)))
    result = solve(input_shape, [template], target, ranges=unknown)
    ours = {tuple(s.values[f] for f in unknown) for s in result.solutions}
    assert ours == brute_force(input_shape, kind, known, unknown, target)
    assert tuple(pick.values()) in ours
    for solution in result.solutions:  # each rebuilt as a plain token and re-checked through the engine
        values = {**known, **{f: solution.values[f] for f in unknown}}
        rebuilt = (kind + "," + ",".join(f"{SHORT[k]}={v}" for k, v in values.items())).replace(",", ":", 1)
        assert analyse(Network(input_shape, (parse_layer(rebuilt),))).output_shape == target == solution.output_shape


def test_issue_examples():
    conv = template_of(*split_token("conv:64,k=7,s=2,p=?"))
    assert [s.values for s in solve((3, 224, 224), [conv], (64, 112, 112)).solutions] == [{"padding": 3}]
    convt = template_of(*split_token("convT:32,k=3,s=2,p=1,op=?"))
    assert [s.values for s in solve((64, 16, 16), [convt], (32, 32, 32)).solutions] == [{"output_padding": 1}]


def test_several_unknowns_across_layers_and_per_axis():
    templates = [template_of(*split_token("conv:8,k=3,s=?,p=1")), template_of(*split_token("conv:8,k=?x3,p=0x1"))]
    result = solve((3, 32, 32), templates, (8, 14, 16), ranges={"stride": (1, 3), "kernel_size": (1, 5)})
    assert {(s.values["1.stride"], s.values["2.kernel_size"]) for s in result.solutions} == {(2, 3)}


@given(st.integers(1, 60), st.integers(1, 5), st.integers(1, 4), st.integers(1, 2), st.booleans())
def test_tensorflow_same(n, k, s, d, lower):
    mode = "same_lower" if lower else "same_upper"
    template = template_of(*split_token(f"conv:2,k={k},s={s},d={d},p={mode}"))
    result = solve((1, n), [template], (2, None))
    (solution,) = result.solutions
    assert solution.output_shape == (2, ceil(n / s))  # TensorFlow's SAME: ceil(n/s)
    total = max((ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
    layers = solution.layers
    if len(layers) == 1:
        assert total % 2 == 0 and layers[0].summary.count(f"p={total // 2}") == (total > 0)
    else:
        begin, end = (int(v) for v in layers[0].summary.split("+"))
        assert begin + end == total and (begin > end) == lower  # the odd element at the start for SAME_LOWER


def test_undo_a_downsampling():
    result = runner.invoke(app, ["solve", "3x224x224", "conv:64,k=3,s=2,p=1", "--undo", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["solutions"]
    for solution in data["solutions"]:
        assert solution["output_shape"] == [3, 224, 224]
    assert {"kernel_size": 3, "padding": 1, "output_padding": 1} in [
        {k: s[k] for k in ("kernel_size", "padding", "output_padding")} for s in data["solutions"]]


def test_unet_input_sizes_are_multiples_of_16():
    sizes = solve_input((3, None, None), load_preset("unet").layers, 1, 200)
    assert sizes.accepted == tuple(range(16, 201, 16)) and sizes.smallest == 16


def test_receptive_field_plans():
    # seed 000: stacked 3x3 convolutions with dilations 1, 2, 4 reach 3, 7, 15
    plan = plan_receptive_field((1, 64, 64), template_of(*split_token("conv:1,k=3,p=same,d=?")), 15)
    assert [r.receptive_field.size[0] for r in plan.layers] == [3, 7, 15] and plan.dilations == (1, 2, 4)
    plan = plan_receptive_field((1, 64, 64), template_of(*split_token("conv:1,k=3,p=same")), 7)
    assert len(plan.layers) == 3  # (kernel-1) * layers + 1 = 7
    plan = plan_receptive_field((1, 8, 8), template_of(*split_token("conv:1,k=3")), 100)
    assert not plan.reached


def test_cli_exit_codes_and_json():
    ok = runner.invoke(app, ["solve", "3x224x224", "conv:64,k=7,s=2,p=?", "--target", "64x112x112", "--json"])
    data = json.loads(ok.stdout)
    assert ok.exit_code == 0 and data["schema"] == "convcalc.solve/1" and data["solutions"][0]["padding"] == 3
    none = runner.invoke(app, ["solve", "3x224x224", "conv:64,k=3,s=2,p=?", "--target", "64x100x100"])
    assert none.exit_code == 1 and "nearest reachable: 64x111x111" in none.stderr
    bad = runner.invoke(app, ["solve", "3x224x224", "relu", "bn", "conv:64,k=3,g=?", "--target", "64x1x1"])
    assert bad.exit_code == 2 and "groups cannot be solved for" in bad.stderr
    wide = runner.invoke(app, ["solve", "3x224x224", "conv:?,k=?,s=?,p=?,d=?", "--target", "64x112x112"])
    assert wide.exit_code == 2 and "combinations" in wide.stderr


def test_solve_says_in_one_line_what_it_takes_instead_of_a_model():
    for args in (["3x?x?", "--model", "m.py:net"], ["3x8x8", "conv:4,k=?", "--target", "4x6x6", "-m", "m.py:net"]):
        result = runner.invoke(app, ["solve", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output
        error, hint = result.stderr.splitlines()
        assert error == ("error: model: solve takes layer tokens, -f FILE or --preset NAME, not --model: a PyTorch "
                         "model's sizes are fixed by the input it is traced at")
        assert hint.startswith("hint: write it as a document first (convcalc convert --model MODEL INPUT")
    assert "--model" not in runner.invoke(app, ["solve", "--help"]).stdout  # not offered: only answered
