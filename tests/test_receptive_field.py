"""Receptive fields against brute force: the set of network-input positions each
output unit depends on, computed straight from each layer's definition
(unclipped coordinates, so padding counts as positions)."""

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, analyse, analyse_tokens
from convcalc.readers.document import load_document


def reads(layer, o):
    """The input positions output position o of one 1-D layer reads."""
    kind, args = layer
    if kind in ("conv", "maxpool", "avgpool"):
        k, s, p, d = args
        return {o * s - p + t * d for t in range(k)}
    if kind == "convT":
        k, s, p, d = args
        return {(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0}
    if kind == "up":
        (f,) = args
        return {o // f}
    if kind == "pad":
        (b,) = args
        return {o - b}
    raise AssertionError(kind)


def dependencies(stack, o):
    positions = {o}
    for layer in reversed(stack):
        positions = set().union(*(reads(layer, q) for q in positions)) if positions else set()
    return positions


def token(layer):
    kind, args = layer
    if kind in ("conv", "convT"):
        k, s, p, d = args
        return f"{kind}:1,k={k},s={s},p={p},d={d}"
    if kind == "maxpool":
        k, s, p, d = args
        return f"maxpool:k={k},s={s},p={p},d={d}"
    if kind == "avgpool":
        k, s, p, _ = args
        return f"avgpool:k={k},s={s},p={p}"
    if kind == "up":
        return f"up:{args[0]}"
    return f"pad:{args[0]}x0"


layers = st.one_of(
    st.tuples(st.just("conv"), st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3))),
    st.tuples(st.just("convT"), st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3))),
    st.tuples(st.just("maxpool"), st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2))),
    st.tuples(st.just("avgpool"), st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(0, 1), st.just(1))),
    st.tuples(st.just("up"), st.tuples(st.integers(2, 3))),
    st.tuples(st.just("pad"), st.tuples(st.integers(0, 2))),
)


@settings(max_examples=400)
@given(stack=st.lists(layers, min_size=1, max_size=5), length=st.integers(8, 40))
def test_receptive_field_equals_brute_force(stack, length):
    try:
        result = analyse_tokens(f"1x{length}", *map(token, stack))
    except ConvcalcError:
        return  # an invalid stack for this length; the oracle tests cover refusals
    for depth, report in enumerate(result.layers, start=1):
        sub = stack[:depth]
        n = report.output_shape[1]
        fields = [dependencies(sub, x) for x in range(n)]
        extents = [max(f) - min(f) + 1 for f in fields if f]
        rf = report.receptive_field
        if not extents:  # every unit falls in a transposed convolution's gaps
            assert rf.size[0] == 0
            continue
        # size: the largest field over every real output position
        assert rf.size[0] == max(extents)
        # uniform: one size everywhere, every unit reads something, placed at centre(0) + x * jump
        linear = len(extents) == n and all(
            Fraction(max(f) + min(f), 2) == Fraction(max(fields[0]) + min(fields[0]), 2) + x * rf.jump[0]
            for x, f in enumerate(fields))
        assert rf.varies[0] == (len(set(extents)) > 1 or len(extents) < n or not linear)
        # jump: the average distance between neighbouring fields' centres
        expected_jump = Fraction(1)
        for kind, args in sub:
            expected_jump *= Fraction(1, args[1]) if kind == "convT" else Fraction(1, args[0]) if kind == "up" else (
                Fraction(1) if kind == "pad" else Fraction(args[1]))
        assert rf.jump[0] == expected_jump
        # centre of unit 0 (when unit 0 reads anything)
        if fields[0]:
            assert rf.centre[0] == Fraction(max(fields[0]) + min(fields[0]), 2)
        # for plain sliding stacks the linear formula holds at every position
        if all(kind in ("conv", "maxpool", "avgpool", "pad") for kind, _ in sub):
            for x, f in enumerate(fields):
                centre = -rf.padding[0] + x * rf.jump[0] + Fraction(rf.size[0] - 1, 2)
                assert centre == Fraction(max(f) + min(f), 2)
                assert max(f) - min(f) + 1 == rf.size[0]


def test_axes_are_kept_apart():
    rf = analyse_tokens("1x20x30", "conv:1,k=3x5,s=1x2,p=0x1").layers[0].receptive_field
    assert rf.size == (3, 5) and rf.jump == (1, 2)
    assert rf.centre == (1, 1)  # 5-wide window starting one before input 0 is centred on 1


def test_flatten_makes_the_field_global():
    result = analyse_tokens("2x6x4", "conv:2,k=3", "flatten", "linear:3")
    rf = result.layers[-1].receptive_field
    assert rf.size == (6, 4) and rf.jump == (None, None)
    assert rf.centre == (Fraction(5, 2), Fraction(3, 2))


def test_transposed_largest_field_is_reported_with_a_note():
    report = analyse_tokens("1x8", "convT:1,k=3,s=2,p=1").layers[0]
    assert report.receptive_field.size == (2,)  # outputs read 1 or 2 inputs
    assert report.receptive_field.jump == (Fraction(1, 2),)
    assert any("differ between output positions" in note for note in report.notes)


after_transposed = st.lists(st.one_of(
    st.tuples(st.just("convT"), st.tuples(st.integers(1, 4), st.integers(2, 5), st.integers(0, 2), st.integers(1, 3))),
    st.tuples(st.just("up"), st.tuples(st.integers(2, 3))),
    st.tuples(st.just("conv"), st.tuples(st.integers(1, 30), st.integers(1, 3), st.integers(0, 12), st.integers(1, 3))),
    st.tuples(st.just("pad"), st.tuples(st.integers(0, 2))),
), min_size=2, max_size=4)


@settings(max_examples=300)
@given(stack=after_transposed, length=st.integers(4, 24))
def test_long_kernels_after_transposed_layers_equal_brute_force(stack, length):
    """The periodic shortcuts (a field of a residue moved by whole periods; a run of a period or more
    read through its first and last period) give the brute-force fields."""
    try:
        result = analyse_tokens(f"1x{length}", *map(token, stack))
    except ConvcalcError:
        return
    report = result.layers[-1]
    fields = [dependencies(stack, x) for x in range(report.output_shape[1])]
    extents = [max(f) - min(f) + 1 for f in fields if f]
    assert report.receptive_field.size[0] == (max(extents) if extents else 0)
    if fields and fields[0]:
        assert report.receptive_field.centre[0] == Fraction(max(fields[0]) + min(fields[0]), 2)


def test_a_long_kernel_after_a_wide_stride_is_quick_and_exact():
    """A 100,000-tap kernel after a stride of 4,093 (80 s before): one field per residue."""
    report = analyse_tokens("1x100", "convT:1,k=1,s=4093", "conv:1,k=100000").layers[-1]
    # each output reads 100,000 consecutive positions of the upsampled axis: 24 or 25 input units
    assert report.receptive_field.size == (25,)


@pytest.mark.parametrize("joined", [
    {"type": "concat", "from": ["input", "piece"], "dim": 2},
    {"type": "slice_scatter", "from": ["input", "piece"], "dim": 2, "start": 4}])
def test_branches_of_different_lengths_joined_along_an_axis_read_at_most_that_axis(joined):
    # a concat or a slice written back reads its branches whole along the axis it joins them on (an
    # upper bound): each branch's own length, so the field never exceeds the input's 9 positions
    document = {"input": [2, 9], "layers": [{"type": "slice", "name": "piece", "dim": 2, "start": 4}, joined]}
    analysis = analyse(load_document(json.dumps(document)))
    assert [str(s) for s in analysis.layers[-1].receptive_field.size] == ["9"]
