"""Work and memory bounded by the input's size, and run's memory promise kept: every case goes
through the command line in its own capped process and ends with a result or a one-line error
(exit 1 refused, 2 bad input), never a traceback or a hang; the memory peak each layer kind
really reaches (traced by tracemalloc, to which NumPy reports) stays under a limit just above
what the run's checks counted."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import pytest

MEMORY_CAP = 3 * 2**30  # RLIMIT_AS for each case
SECONDS = 120  # a hang guard only
BIG = "x".join(["4611686018427387904"] * 20)
EIGHT_PADS = ["conv:8,k=3,p=?"] * 8


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(args, stdin: bytes = b""):
    return subprocess.run([sys.executable, "-m", "convcalc", *args], input=stdin, capture_output=True,
                          timeout=SECONDS, preexec_fn=_capped)


CASES = {
    "run --repeat 10^9": (["run", "3x8x8", "relu", "--repeat", "1000000000"], 2),
    "compare --run --repeat 10^9": (["compare", "8x8x8", "conv:8,k=3", "--run", "--repeat", "1000000000"], 2),
    "solve four unknowns over 0..1000": (["solve", "3x224x224", "conv:64,k=?,s=?,p=?,d=?", "--target", "64x112x112",
                                          "--range", "p=0..1000", "--range", "k=1..1000", "--range", "s=1..1000",
                                          "--range", "d=1..1000"], 2),
    "solve eight p=? over 0..1000": (["solve", "3x224x224", *EIGHT_PADS, "--target", "8x224x224", "--range",
                                      "p=0..1000"], 2),
    "solve input sizes times layers": (["solve", "3x?x?", "--preset", "resnet50", "--range", "input=1..100000"], 2),
    "roofline of 10^373 FLOPs": (["shape", f"3x{BIG}", "relu", "--device", "t4", "--json"], 0),
    "roofline of a huge convolution": (["shape", "3x4611686018427387904x4611686018427387904x4611686018427387904",
                                        "conv:8,k=3", "--device", "t4"], 0),
    "compare --device on a huge input": (["compare", "8x4611686018427387904x4611686018427387904", "conv:8,k=3",
                                          "--device", "t4"], 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bounded_case(name):
    args, expected = CASES[name]
    result = run_capped(args)
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[-2000:]
    assert result.returncode == expected, (result.returncode, stderr[-500:])
    if expected:
        lines = stderr.splitlines()
        assert lines[0].startswith("error:") and lines[1].startswith("hint:") and len(lines) == 2, stderr


def test_repeat_refusals_name_the_maximum():
    result = run_capped(["run", "3x8x8", "relu", "--repeat", "1000000000"])
    assert b"more than 10,000" in result.stderr


def test_solve_refusal_says_how_to_narrow():
    result = run_capped(["solve", "3x224x224", *EIGHT_PADS, "--target", "8x224x224", "--range", "p=0..1000"])
    assert b"1,001 (1.padding) x 1,001 (2.padding)" in result.stderr and b"--range" in result.stderr


def test_a_huge_roofline_is_the_largest_float_and_a_null_layer():
    data = json.loads(run_capped(["shape", f"3x{BIG}", "relu", "--device", "t4", "--json"]).stdout)
    assert data["totals"]["roofline"]["seconds"] == sys.float_info.max  # still a lower bound
    assert data["layers"][0]["roofline"]["seconds"] is None and data["layers"][0]["roofline"]["bound"] == "memory"


def test_roofline_too_large_is_said():
    from convcalc import analyse_tokens
    from convcalc.engine.roofline import find_device, roofline

    line = roofline(analyse_tokens(f"3x{BIG}", "relu"), find_device("t4"))
    assert line.too_large and line.seconds == sys.float_info.max and line.memory_share == 1.0
    small = roofline(analyse_tokens("3x8x8", "relu"), find_device("t4"))
    assert not small.too_large and 0 < small.seconds < 1


def test_repeats_stop_at_the_time_budget(monkeypatch):
    from convcalc import Network, parse_layer
    from convcalc.verbs import execute as execution

    monkeypatch.setattr(execution, "REPEAT_SECONDS", 0.0)
    result = execution.execute(Network((3, 8, 8), (parse_layer("relu"),)), repeat=500)
    assert result.repeat == 500 and result.runs[0].runs == 1


# Each kind the run used to let past its limit, at about 16 MiB an activation. The probe finds the
# largest amount the run's checks counted (what is held included), runs again under a limit 1%
# above it, and reports each layer's measured peak (the run's tracemalloc figure plus the layer's
# parameters).
PROBE = textwrap.dedent('''
    import json, sys
    from dataclasses import replace
    from convcalc import Network, parse_layer
    from convcalc.backend import memory
    from convcalc.engine.errors import ResourceError
    from convcalc.verbs.execute import execute

    needs = []
    original = memory.check_memory
    def recording(operation, parts):
        needs.append(sum({**getattr(memory._held, "parts", {}), **parts}.values()))
        return original(operation, parts)
    for module in list(sys.modules.values()):
        if getattr(module, "check_memory", None) is original:
            module.check_memory = recording

    def layer(token, name=None, inputs=None):
        made = parse_layer(token)
        made = replace(made, name=name) if name else made
        return replace(made, inputs=tuple(inputs)) if inputs else made

    shape, batch, layers = json.loads(sys.argv[1])
    network = Network(tuple(shape), tuple(layer(*spec) for spec in layers), batch=batch)
    execute(network, repeat=1)
    limit = max(needs) + max(needs) // 100
    memory.set_memory_limit(limit)
    try:
        result = execute(network, repeat=1)
    except ResourceError as err:
        print(json.dumps({"refused": err.message}))
    else:
        peaks = [live + r.params * 4 for live, r in zip(result.live_bytes, result.analysis.layers)]
        print(json.dumps({"limit": limit, "peak": max(peaks)}))
''')

RESIDUAL = [["relu", "a"], ["gelu", "b"], ["add", "c", ["a", "b"]]]
KINDS = {
    "gelu": ((16, 512, 512), 1, [["gelu"]]),
    "gelu tanh": ((16, 512, 512), 1, [["gelu:approximate=tanh"]]),
    "mish": ((16, 512, 512), 1, [["mish"]]),
    "softmax": ((16, 512, 512), 1, [["softmax:1"]]),
    "batch norm (float32 statistics)": ((16, 512, 512), 1, [["bn"]]),
    "group norm": ((16, 512, 512), 1, [["gn:4"]]),
    "layer norm": ((16, 512, 512), 1, [["ln:512"]]),
    "reflection padding": ((64, 64, 64), 16, [["reflectionpad:63"]]),
    "replication padding": ((64, 64, 64), 16, [["replicationpad:63"]]),
    "convolution with reflect padding": ((16, 256, 256), 4, [["conv:16,k=3,p=1,padding_mode=reflect"]]),
    "adaptive average pooling": ((16, 512, 512), 1, [["aap:3"]]),
    "adaptive max pooling": ((16, 512, 512), 1, [["amp:7"]]),
    "bilinear upsampling": ((16, 256, 256), 1, [["up:2,mode=bilinear"]]),
    "add of two branches": ((16, 512, 512), 1, RESIDUAL),
    "add of three branches": ((16, 512, 512), 1, RESIDUAL[:2] + [["add", "c", ["a", "b", "a"]]]),
    "transposed kernel of 2x10^7": ((2000, 1, 1), 1, [["convT:1000,k=10"]]),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_measured_peak_stays_under_a_limit_just_above_the_checks(name):
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(KINDS[name])], capture_output=True,
                            timeout=SECONDS, preexec_fn=_capped)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    outcome = json.loads(result.stdout)
    if "refused" not in outcome:
        assert outcome["peak"] <= outcome["limit"], outcome
