"""Tests generated from the kind declarations: every declared kind, every declared argument, typed edge
values, through every reader that can write them (shell tokens, constructor text, documents).

Each case ends in a result or a ``ConvcalcError`` (the command line's one-line error, exit 2), never
another exception; a result's JSON holds only finite numbers, ``convert`` then reading it back gives
the same JSON, and the NumPy backend runs it (or says it cannot) with the shapes the analysis gave.
A kind added later is covered here without editing this file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import Network, analyse
from convcalc.cli import app
from convcalc.engine.errors import ConsistencyError, ConvcalcError
from convcalc.engine.layers import Layer
from convcalc.engine.layers.base import Figures, saves_input
from convcalc.engine.layers.kind import CLASSES, KINDS, arguments_of, rule_of, spell
from convcalc.engine.sizes import volume
from convcalc.output.document import network_to_yaml
from convcalc.readers import load_document, parse_constructor, parse_layer
from convcalc.verbs.execute import execute
from convcalc.verbs.explain import explain

runner = CliRunner()

# Values for required arguments, so each kind can be built on a 4x8x8 input (or its rank's).
REQUIRED = {
    "out_channels": 4, "kernel_size": 3, "output_size": 2, "padding": 1, "normalized_shape": 8, "num_groups": 2,
    "dims": (0, 1, 3, 2), "dim0": 2, "dim1": 3, "shape": (4, 64), "dim": 1, "upscale_factor": 2,
    "downscale_factor": 2, "groups": 2, "chunks": 2, "split_size_or_sections": 2, "start": 0, "length": 2,
    "index": 0, "sizes": (16, 16), "op": "custom", "output": (4, 8, 8), "size": 3, "out_features": 5, "hidden_size": 5,
    "shifts": (1, -1), "embed_dim": 8, "num_heads": 2,
    "equation": "cij;cjk->cik",
}
# Arguments whose PyTorch default a 4x8x8 input refuses (a reduction over the batch, no size to upsample to).
USUAL = {"Reduce": {"dim": (2, 3)}, "Roll": {"dims": (2, 3)}, "MatMul": {"weight_shape": (8, 5)}, "Upsample": {"scale_factor": 2.0}, "Chunk": {"dim": 1}, "Split": {"dim": 1},
         "Add": {"scalar": 2.0}, "Sub": {"scalar": 2.0}, "Mul": {"scalar": 2.0}, "Div": {"scalar": 2.0},
         "Clamp": {"min": 0.0}, "Fold": {"output_size": (3, 5), "kernel_size": 2}}  # Fold: 8 rows of 2 x 4 blocks
# Inputs for kinds a 4x8x8 input cannot feed: grid_sample reads it as its grid too, whose last size is the
# number of spatial axes (2).
INPUTS = {"GridSample": (4, 8, 2)}
NAN, INF = float("nan"), float("inf")
# Typed edge values: numbers at PyTorch's limits and past them, the padding words, a wrong type, an empty
# value and a control character.
EDGES = (0, 1, -1, 2**62, 2**63, NAN, INF, "same", "valid", "abc", "", "\x1b[2J")


def _kinds():
    """One kind per distinct declaration (aliases of one kind are the same declaration)."""
    seen, kinds = set(), []
    for kind in KINDS.values():
        key = (kind.cls, kind.fields, kind.fixed, kind.rank)
        if key not in seen:
            seen.add(key)
            kinds.append(kind)
    return kinds


KIND_LIST = _kinds()


def _input(kind) -> tuple[int, ...]:
    return INPUTS.get(kind.cls.__name__, (4,) + (8,) * (kind.rank or 2))


def _wiring(kind):
    """The input shape and the branches (None: the layer before) the kind's base layer analyses with:
    merges read the input as many times as they take branches (a product two, attention three), on a
    per-sample matrix where they want one (bmm). Found once per kind, by trying."""
    if kind not in _WIRING:
        found = (_input(kind), None)
        layer = parse_layer(_token(kind, _base(kind)))
        for shape in (_input(kind), _input(kind)[-2:]):
            for branches in (None, 2, 3):
                try:
                    wiring = None if branches is None else ("input",) * branches
                    analyse(Network(shape, (replace(layer, inputs=wiring),)))
                except ConvcalcError:
                    continue
                found = (shape, wiring)
                break
            else:
                continue
            break
        _WIRING[kind] = found
    return _WIRING[kind]


_WIRING: dict = {}


def _base(kind) -> dict:
    usual = {k: v for k, v in USUAL.get(kind.cls.__name__, {}).items() if k in kind.fields}
    return {**{name: REQUIRED[name] for name in kind.required}, **usual}


def _token_text(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _token(kind, arguments: dict) -> str:
    parts = [f"{key}={_token_text(value)}" for key, value in arguments.items()]
    return kind.name + (":" + ",".join(parts) if parts else "")


def _constructor(kind, arguments: dict) -> str:
    def literal(value):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else f"float('{value}')"

    return f"{kind.name}(" + ", ".join(f"{key}={literal(value)}" for key, value in arguments.items()) + ")"


def _document(kind, arguments: dict) -> str:
    shape, wiring = _wiring(kind)
    layer = {"type": kind.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in arguments.items()}}
    if wiring is not None:
        layer["from"] = list(wiring)
    return json.dumps({"input": list(shape), "layers": [layer]})  # NaN and Infinity as Python writes them


def _network(kind, layer) -> Network:
    shape, wiring = _wiring(kind)
    return Network(shape, (layer if wiring is None else replace(layer, inputs=wiring),))


SOURCES = {
    "token": lambda kind, args: _network(kind, parse_layer(_token(kind, args))),
    "constructor": lambda kind, args: _network(kind, parse_constructor(_constructor(kind, args))),
    "document": lambda kind, args: load_document(_document(kind, args)),
}


def _outcome(build, kind, arguments):
    """The analysis, or the ConvcalcError; anything else is reported with the case."""
    try:
        network = build(kind, arguments)
        return network, analyse(network)
    except ConvcalcError as err:
        assert "\n" not in err.message, f"a multi-line error: {err.message!r}"
        return None, err


def _check_result(network, analysis, case) -> None:
    data = analysis.to_dict()
    json.dumps(data, allow_nan=False)  # only finite numbers in the schema's object
    # convert, then read the document back: the same figures
    again = analyse(load_document(network_to_yaml(network)))
    assert again.to_dict() == data, f"{case}: convert then shape -f differs"


def test_every_declaration_is_complete():
    """Each kind's arguments are fields of its class with a rule; required and positional ones are
    among them; what a name fixes is a field too."""
    for kind in KIND_LIST:
        declared = arguments_of(kind.cls)
        for name in (*kind.fields, *kind.required, *kind.positional, *dict(kind.fixed)):
            assert name in declared, f"{kind.name}: {name} is not a field of {kind.cls.__name__}"
        for name in kind.fields:
            assert callable(rule_of(kind.cls, name)), f"{kind.name}.{name} has no rule"
        assert set(kind.required) <= set(kind.fields) and set(kind.positional) <= set(kind.fields), kind.name


@pytest.mark.parametrize("kind", KIND_LIST, ids=lambda kind: kind.name)
def test_edge_values_give_a_result_or_a_clean_error(kind):
    base = _base(kind)
    cases = [(source, None, None) for source in SOURCES]
    cases += [(source, name, value) for source in SOURCES for name in kind.fields for value in EDGES]
    results = 0
    for source, name, value in cases:
        arguments = dict(base) if name is None else {**base, name: value}
        case = f"{source} {kind.name} {name}={value!r}"
        try:
            network, outcome = _outcome(SOURCES[source], kind, arguments)
        except Exception as err:  # noqa: BLE001 - the point: nothing but ConvcalcError escapes
            pytest.fail(f"{case}: {type(err).__name__}: {err}")
        if network is not None:
            _check_result(network, outcome, case)
            results += 1
    assert results, f"{kind.name}: no case gave a result (the base arguments should)"


@pytest.mark.parametrize("kind", KIND_LIST, ids=lambda kind: kind.name)
def test_run_executes_each_kind_or_refuses_cleanly(kind):
    """The backend runs the kind with the shapes the analysis gives (a disagreement is a
    ConsistencyError), or says it cannot execute it."""
    network = replace(_network(kind, parse_layer(_token(kind, _base(kind)))), dtype="float64")
    try:
        result = execute(network, repeat=1)
    except ConsistencyError:
        raise
    except ConvcalcError as err:
        assert kind.cls.__name__ == "Opaque", f"{kind.name} refused to run: {err.message}"
        return
    assert len(result.runs) == 1


def test_the_command_line_agrees_for_every_kind():
    """shape --json for each kind's base token exits 0; a stream of every kind's document gives, line
    for line, what -f --json gives for that document."""
    documents = [_document(kind, _base(kind)) for kind in KIND_LIST]
    stream = runner.invoke(app, ["shape", "--stream", "-"], input="\n".join(documents) + "\n")
    assert stream.exit_code == 0, stream.output
    lines = stream.stdout.splitlines()
    assert len(lines) == len(documents)
    for kind, document, line in zip(KIND_LIST, documents, lines):
        single = runner.invoke(app, ["shape", "-f", "-", "--json"], input=document)
        assert single.exit_code == 0, (kind.name, single.output)
        assert json.loads(line) == json.loads(single.stdout), kind.name


@pytest.mark.parametrize("kind", KIND_LIST[::7], ids=lambda kind: kind.name)
def test_a_bad_value_is_one_line_on_the_command_line(kind):
    """Through the real command: exit 2, an error line naming the cause, no traceback."""
    token = _token(kind, {**_base(kind), kind.fields[0] if kind.fields else "nonsense": "\x1b[2J"})
    result = runner.invoke(app, ["shape", "x".join(map(str, _wiring(kind)[0])), token])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error:")
    assert "\x1b" not in result.stderr  # the control character is shown escaped


@pytest.fixture
def square_clamp():
    """A kind defined here, outside the package: declaring the class is all it takes (it is
    registered as it is defined, and taken out of the table again after the test)."""

    @dataclass(frozen=True)
    class SquareClamp(Layer):
        """min(x^2, limit), elementwise (a kind convcalc does not ship)."""

        spellings = (spell("testsquareclamp", "TestSquareClamp", fields=("limit", "inplace"),
                           positional=("limit",), required=("limit",)),)

        limit: float
        inplace: bool = False

        def infer(self, shape):
            return Figures("TestSquareClamp", shape, 0, 0, 2 * volume(shape), summary=f"limit={self.limit:g}")

        def saved(self, use):
            return [saves_input()]

        def prepare(self, run, x):
            return lambda x: np.minimum(x * x, x.dtype.type(self.limit))

        def explain_costs(self, report, batch):
            return [f"FLOPs: a square and a minimum per element = {report.flops:,}"]

    yield SquareClamp
    KINDS.pop("testsquareclamp", None)
    CLASSES.pop(SquareClamp, None)


def test_a_kind_defined_outside_the_package_works_everywhere(square_clamp):
    shape = (3, 4, 4)
    token = parse_layer("testsquareclamp:0.5")
    document = load_document(json.dumps({"input": [3, 4, 4], "layers": [{"type": "TestSquareClamp", "limit": 0.5}]}))
    constructor = parse_constructor("TestSquareClamp(0.5)")
    assert token == document.layers[0] == constructor
    analysis = analyse(Network(shape, (token,)))
    assert analysis.totals.flops == 2 * 3 * 4 * 4 and analysis.output_shape == shape
    # executed: the NumPy backend's output against the definition
    run = execute(Network(shape, (token,), dtype="float64"), repeat=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, *shape))
    assert run.runs[0].maximum == pytest.approx(float(np.minimum(x * x, 0.5).max()))
    assert "FLOPs: a square and a minimum per element = 96" in explain(Network(shape, (token,)))
    # converted and read back
    text = network_to_yaml(Network(shape, (token,)))
    assert "testsquareclamp" in text
    assert analyse(load_document(text)).to_dict() == analysis.to_dict()
    # and refused like any kind
    with pytest.raises(ConvcalcError, match="limit"):
        parse_layer("testsquareclamp:limit=abc")
    result = runner.invoke(app, ["shape", "3x4x4", "testsquareclamp:0.5", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"][0]["type"] == "TestSquareClamp"
