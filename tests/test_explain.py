"""convcalc explain: the working shown, checked against hand-worked lines, brute-force
overlap counts, and the backend (the matrix times x is the convolution)."""


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import convcalc.functional as F
from convcalc import Network, parse_layer, parse_shape
from convcalc.cli import app
from convcalc.verbs.explain import convolution_matrix, explain, overlap_counts

runner = CliRunner()


def lines_for(input_shape, *tokens, at=None):
    return explain(Network(parse_shape(input_shape), tuple(parse_layer(t) for t in tokens)), at=at)


def test_issue_example_lines():
    lines = lines_for("3x224x224", "conv:64,k=7,s=2,p=3")
    assert "H: floor((224 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 112" in lines
    assert "params: 64 x 3 x 7 x 7 + 64 = 9,472" in lines
    assert "MACs: 64x112x112 outputs x 3 x 7 x 7 = 118,013,952" in lines
    assert ("receptive field: each output reads 7 input positions (was 1), neighbouring outputs' fields 2 input "
            "positions\n  apart (was 1 input position); output 0 reads input positions -3 to 3 on every axis") in lines


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 6), s=st.integers(1, 3), p=st.integers(0, 3), d=st.integers(1, 3), relu_first=st.booleans())
def test_the_field_in_words_is_where_output_0_reads(k, s, p, d, relu_first):
    """Output 0 of a convolution reads input positions -p, -p + d, ..., -p + (k-1)d (a brute-force list of
    its taps), and two neighbouring outputs' windows start s apart: the words say exactly that."""
    size = (k - 1) * d + 1
    if 16 + 2 * p < size:
        return
    taps = [-p + i * d for i in range(k)]
    tokens = (["relu"] if relu_first else []) + [f"conv:1,k={k},s={s},p={p},d={d}"]
    text = " ".join(lines_for("1x16", *tokens)).replace("\n  ", " ")
    assert f"each output reads {size} input positions (was 1)" in text
    assert f"fields {s} input position{'' if s == 1 else 's'} apart" in text
    assert f"output 0 reads input positions {min(taps)} to {max(taps)}" in text
    if (min(taps) + max(taps)) % 2:
        low = (min(taps) + max(taps)) // 2
        assert f"centred on {min(taps) + max(taps)}/2 (halfway between {low} and {low + 1})" in text
    else:
        assert "centred" not in text


def test_ceil_mode_and_same_are_spelled_out():
    lines = lines_for("1x5x5", "maxpool:k=2,s=2,p=1,ceil_mode=true")
    assert ("H: ceil((5 + 2*1 - 1*(2-1) - 1) / 2) + 1 = 4; the last window starts at (4-1)*2 = 6 >= 5 + 1 = 6, "
            "inside the right padding: dropped -> 3") in lines
    lines = lines_for("1x6x6", "conv:1,k=4,p=same")
    assert lines[1] == ("padding='same': total d(k-1) = 3, 3 split as (before, after) (1, 2), (1, 2); "
                        "an odd total puts the extra at the end")


def test_golden_window_drawing():
    lines = lines_for("1x5", "conv:1,k=3,s=2,p=1", at=(1,))
    assert lines[lines.index("window of output 1 (3 taps):") + 1] == "  . o # # # o ."


def test_golden_receptive_field_drawing():
    lines = lines_for("1x5x5", "conv:1,k=3,s=2,p=1", "maxpool:k=2,s=2,p=1,ceil_mode=true", at=(1, 1))
    start = lines.index("receptive field of output 1,1 of the last layer, over the input (1..5 x 1..5):")
    assert lines[start + 1 : start + 3] == ["  o o o o o", "  o # # # #"]


def test_the_drawn_field_is_the_analysis_s_through_moves_and_windows():
    """Drawn from the analysis's own fields: a transpose swaps the axes the field lies on, and a
    softmax over a window partition's tokens reads the window (the rows and columns of a 2x2 window),
    worked out by hand."""
    lines = lines_for("1x4x6", "conv:1,k=3,p=1", "transpose:2,3", "conv:1,k=1x3,p=0x1", at=(2, 1))
    # unit 2 along the input's rows: the second convolution's 3 taps now lie along them (rows 1..3), then
    # the first's (0..4); unit 1 along its columns: one tap, then the first's 3 (0..2)
    assert "receptive field of output 2,1 of the last layer, over the input (0..4 x 0..2):" in lines
    partition = ["permute:0x2x3x1", "reshape:2x2x2x2x1", "permute:0x1x3x2x4x5", "reshape:4x4x1", "softmax:dim=2",
                 "reshape:2x2x2x2x1", "permute:0x1x3x2x4x5", "reshape:4x4x1", "permute:0x3x1x2"]
    lines = lines_for("1x4x4", *partition, at=(3, 0))
    start = lines.index("receptive field of output 3,0 of the last layer, over the input (2..3 x 0..1):")
    assert lines[start + 1 : start + 5] == ["  o o o o", "  o o o o", "  # # o o", "  # # o o"]


def naive_overlap(k, s, p, d, op, n):
    full = (n - 1) * s + d * (k - 1) + 1 + op
    counts = [0] * full
    for i in range(n):
        for t in range(k):
            counts[i * s + t * d] += 1
    return counts[p : full - p]


@settings(max_examples=200)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2), st.integers(1, 3), st.integers(0, 1), st.integers(1, 9))
def test_overlap_map_equals_brute_force(k, s, p, d, op, n):
    if op >= max(s, d):
        op = 0
    layer = parse_layer(f"convT:1,k={k},s={s},p={p},d={d},op={op}")
    full = (n - 1) * s + d * (k - 1) + 1 + op
    if full - 2 * p < 1:
        return
    assert overlap_counts(layer, (n,)) == naive_overlap(k, s, p, d, op, n)


def test_checkerboard_warning():
    assert any(line.startswith("warning: uneven overlap") for line in lines_for("1x4x4", "convT:1,k=3,s=2,p=1,op=1"))
    assert not any(line.startswith("warning") for line in lines_for("1x4x4", "convT:1,k=4,s=2,p=1"))


def test_seed_000_convolution_matrix():
    kernel = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=float)
    taps = np.array(convolution_matrix(parse_layer("conv:1,k=3"), (4, 4)))
    weights = np.concatenate([[0.0], kernel.ravel()])[taps]  # tap number -> its weight
    assert weights[0].tolist() == [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0]  # the seed's first row
    x = np.array([4, 5, 8, 7, 1, 8, 8, 8, 3, 6, 6, 4, 6, 5, 7, 8], dtype=float)
    assert (weights @ x).tolist() == [122, 148, 126, 134]


@settings(max_examples=80)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2),
       st.integers(3, 6), st.integers(0, 2**31))
def test_matrix_is_the_convolution_and_its_transpose_the_transposed_convolution(rank, k, s, p, d, n, seed):
    sizes = (n,) * rank
    layer = parse_layer(f"conv:1,k={k},s={s},p={p},d={d},bias=false")
    try:
        out = layer.infer((1, *sizes)).output_shape[1:]
    except Exception:
        return
    taps = np.array(convolution_matrix(layer, sizes))
    kernel = np.arange(1, k ** rank + 1, dtype=float).reshape((1, 1) + (k,) * rank)  # tap numbers as weights
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 1, *sizes))
    assert np.allclose(taps @ x.ravel(), F.conv(x, kernel, None, s, p, d).ravel())
    y = rng.standard_normal((1, 1, *out))
    # the output_padding that brings the transposed convolution back to the input size
    op = [n - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for o in out]
    if all(0 <= q < max(s, d) for q in op):
        back = F.conv_transpose(y, kernel, None, s, p, tuple(op), 1, d)
        assert np.allclose(taps.T @ y.ravel(), back.ravel())


def test_full_padding_extension():
    x = np.arange(6.0)[None, None]
    w = np.array([1.0, 2.0, 3.0])[None, None]
    assert F.conv(x, w, padding="full")[0, 0].tolist() == np.convolve(x[0, 0], w[0, 0][::-1], "full").tolist()
    lines = lines_for("1x8", "conv:1,k=3")
    assert "  full : pad 2 each side (convcalc's p=full) -> 8 + 2 = 10" in lines
    result = runner.invoke(app, ["shape", "1x20", "conv:1,k=5,p=full"])
    assert "1x24" in result.stdout and "padding='full' is convcalc's extension" in result.stderr


def test_cli():
    result = runner.invoke(app, ["explain", "1x4x4", "conv:1,k=3", "--matrix"])
    assert result.exit_code == 0 and "convolution matrix: 4 outputs x 16 inputs" in result.stdout
    bad = runner.invoke(app, ["explain", "1x4x4", "conv:1,k=3", "--at", "x,y"])
    assert bad.exit_code == 2 and "--at 'x,y' is not an output position" in bad.stderr
    many = runner.invoke(app, ["explain", "3x4x4", "conv:1,k=3", "--matrix"])
    assert many.exit_code == 2 and "single-channel" in many.stderr


def test_where_an_input_lands_in_a_transposed_convolution():
    from convcalc.verbs.explain import landing

    layer = parse_layer("convT:1,k=3,s=2,p=1")
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # one input; the backend shows where it lands
    y = F.conv_transpose(x, np.ones((1, 1, 3, 3)), None, 2, 1)
    written = {tuple(p) for p in np.argwhere(y[0, 0] != 0)}
    assert landing(layer, (3, 3), (1, 1)) == written
    corner = np.zeros((1, 1, 3, 3))
    corner[0, 0, 0, 0] = 1.0  # its taps reach into the cropped padding too
    y = F.conv_transpose(corner, np.ones((1, 1, 3, 3)), None, 2, 1)
    assert landing(layer, (3, 3), (0, 0)) == {tuple(p) for p in np.argwhere(y[0, 0] != 0)}
    lines = lines_for("1x3x3", "convT:1,k=3,s=2,p=1", at=(1, 1))
    start = lines.index("input 1,1 lands on (#), in the output:")
    assert lines[start + 2] == "  o # # # o"
