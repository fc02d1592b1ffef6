"""The analysed receptive field equals the measured one: change one input element,
run the real backend, and see which outputs change.

The stacks are linear (convolutions, transposed convolutions, average pooling,
upsampling, padding), so an output changes exactly when it depends on the
element. Max pooling makes dependence data-dependent (a change can lose every
max it meets), so its geometry is checked by the brute-force and PyTorch tests
instead."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, Network, analyse, parse_layer, parse_shape
from convcalc.verbs.execute import prepare_layer

layer_tokens = st.one_of(
    st.builds("conv:1,k={},s={},p={},d={}".format, st.integers(1, 4), st.integers(1, 2), st.integers(0, 2),
              st.integers(1, 3)),
    st.builds("convT:1,k={},s={},p={},d={}".format, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
              st.integers(1, 2)),
    st.builds("avgpool:k={},s={}".format, st.integers(2, 3), st.integers(1, 2)),
    st.builds("up:{}".format, st.integers(2, 3)),
    st.builds("pad:{}x{}".format, st.integers(0, 2), st.integers(0, 2)),
)


def run_stack(calls, x):
    for call in calls:
        x = call(x)
    return x


def measured_fields(network, seed):
    """For every output position, the input positions whose change changes it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, *network.input_shape))
    calls, probe = [], x
    for layer in network.layers:
        call = prepare_layer(layer, probe, rng)
        calls.append(call)
        probe = call(probe)
    base = run_stack(calls, x)
    fields = [set() for _ in range(base.shape[-1])]
    for j in range(x.shape[-1]):
        moved = x.copy()
        moved[..., j] += 1e3
        changed = np.nonzero(np.any(run_stack(calls, moved) != base, axis=1)[0])[0]
        for position in changed:
            fields[position].add(j)
    return fields


@settings(max_examples=120)
@given(st.lists(layer_tokens, min_size=1, max_size=4), st.integers(0, 2**31))
def test_receptive_field_matches_perturbation(tokens, seed):
    length = 96
    network = Network(parse_shape(f"1x{length}"), tuple(parse_layer(t) for t in tokens), dtype="float64")
    try:
        report = analyse(network).layers[-1]
    except ConvcalcError:
        return
    rf = report.receptive_field
    size, jump, centre = rf.size[0], rf.jump[0], rf.centre[0]
    fields = measured_fields(network, seed)
    for field in fields:
        assert not field or max(field) - min(field) + 1 <= size  # never wider than the analysis says
    # Near the ends, fields are cut by the input's border and by every later
    # layer's padding, which lies within about one field of it; two fields'
    # margin keeps only whole fields.
    margin = 2 * size
    whole = [(x, f) for x, f in enumerate(fields) if f and min(f) >= margin and max(f) <= length - 1 - margin]
    if not rf.varies[0]:
        # every whole field sits exactly where centre(x) = -padding + x*jump + (size-1)/2 puts it
        for x, field in whole:
            middle = centre + x * jump
            assert (min(field), max(field)) == (middle - Fraction(size - 1, 2), middle + Fraction(size - 1, 2))
    if len(whole) >= 16:
        assert max(max(f) - min(f) + 1 for _, f in whole) == size  # and the widest is as wide as reported


def test_seed_stack_of_dilated_convolutions_measured():
    network = Network(parse_shape("1x40"), tuple(parse_layer(t) for t in ["conv:1,k=3,p=1", "conv:1,k=3,d=2,p=2",
                                                                           "conv:1,k=3,d=4,p=4"]), dtype="float64")
    fields = measured_fields(network, 0)
    assert max(f) - min(f) + 1 == 15 if (f := fields[20]) else False
