"""convcalc run: execution through the CLI, reproducibility, refusals, consistency checks."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import Network, parse_layer, parse_shape
from convcalc.cli import app
from convcalc.engine.errors import SpecError
from convcalc.verbs.execute import execute

runner = CliRunner()
NET = ["3x32x32", "conv:8,k=3,p=1,bias=false", "bn", "relu", "maxpool:2", "convT:4,k=4,s=2,p=1", "gap", "flatten",
       "linear:5"]


def invoke(*args):
    return runner.invoke(app, list(args))


def test_run_table():
    result = invoke("run", *NET, "--batch", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "name", "layer", "output", "ms", "±", "GFLOP/s", "mean", "std", "min", "max"]
    relu = lines[3].split()
    assert relu[1:3] == ["3", "ReLU"] and float(relu[-2]) == 0.0  # named by its index; its minimum
    footer = next(line for line in lines if line.startswith("seed 0;"))
    assert "warm run(s) per layer, chosen automatically after a warm-up" in footer


def test_run_json_adds_measurements_to_the_shape_schema():
    data = json.loads(invoke("run", *NET, "--json", "--seed", "7", "--repeat", "2").stdout)
    assert data["schema"] == "convcalc.shape/1" and data["run"]["seed"] == 7 and data["run"]["repeat"] == 2
    first = data["layers"][0]
    assert first["run"]["seconds"] > 0 and first["run"]["gflops"] > 0
    assert set(first["run"]["output"]) == {"mean", "std", "min", "max"}
    assert data["layers"][2]["run"]["output"]["min"] >= 0  # after ReLU
    assert data["layers"][2]["run"]["gflops"] is None  # no multiply-accumulates


def test_same_seed_same_values_other_seed_other_values():
    def values(seed):
        data = json.loads(invoke("run", *NET, "--json", "--seed", str(seed)).stdout)
        return [layer["run"]["output"] for layer in data["layers"]]

    assert values(3) == values(3)
    assert values(3) != values(4)


def test_float64_run():
    data = json.loads(invoke("run", "2x9", "conv:3,k=3", "--dtype", "float64", "--json").stdout)
    assert data["run"]["dtype"] == "float64" and data["layers"][0]["param_bytes"] == (3 * 2 * 3 + 3) * 8


def test_memory_limit_refuses_with_exit_1():
    result = invoke("run", "64x224x224", "conv:64,k=3,p=1", "--batch", "64", "--memory-limit", "64MiB")
    assert result.exit_code == 1
    assert "over the limit of 64.00 MiB" in result.stderr and "smaller batch or input" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "3x8x8", "relu", "--dtype", "float16"], "convcalc runs float32 or float64"),
        (["run", "3x8x8", "relu", "--memory-limit", "lots"], "is not a size"),
        (["run", "3x8x8", "relu", "--repeat", "0"], "repeat must be a positive integer"),
        (["run", "3x8x8", "conv:4,k=9"], "larger than the padded input"),
    ],
)
def test_bad_run_input_exits_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_disagreement_with_the_analysis_is_reported_as_a_bug(monkeypatch):
    monkeypatch.setattr(type(parse_layer("relu")), "prepare", lambda layer, run, x: (lambda x: x[..., :-1]))
    result = invoke("run", "3x8x8", "relu")
    assert result.exit_code == 1
    assert "this is a bug in convcalc" in result.stderr and "3x8x7" in result.stderr


def test_every_layer_kind_says_how_it_runs():
    """Each kind has its own prepare, or is one convcalc says it cannot execute (an opaque operation)."""
    from convcalc.engine.layers import Layer, Opaque
    from convcalc.engine.layers.kind import CLASSES

    for cls in CLASSES:
        assert cls.prepare is not Layer.prepare, f"{cls.__name__} does not say how it executes"
    with pytest.raises(SpecError, match="cannot execute"):
        Opaque("aten.foo", (3,)).prepare(None, None)


def test_execute_output_matches_the_functional_api():
    network = Network(parse_shape("2x10"), (parse_layer("conv:3,k=3,p=1"),), batch=1, dtype="float64")
    result = execute(network, seed=5)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 10))
    bound = 1 / np.sqrt(2 * 3)
    w = rng.uniform(-bound, bound, (3, 2, 3))
    b = rng.uniform(-bound, bound, 3)
    # an independent loop: the convolution by its definition
    padded = np.pad(x[0], ((0, 0), (1, 1)))
    y = np.array([[b[o] + sum(w[o, c, t] * padded[c, i + t] for c in range(2) for t in range(3)) for i in range(10)]
                  for o in range(3)])
    assert result.runs[0].mean == pytest.approx(y.mean(), rel=1e-12)
    assert result.runs[0].maximum == pytest.approx(y.max(), rel=1e-12)
