"""Random strings and random documents at every entry point: never a traceback,
always exit 0 or 2 with a message; in --stream the good lines still come through."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()
ALPHABET = st.sampled_from(list("conv:relu,=kspdgx0123456789?-_().[]{}'\" ") + ["conv", "k=", "p=same", "maxpool",
                                                                                "convT", "bias=false", "x"])
tokens = st.lists(ALPHABET, min_size=0, max_size=12).map("".join)
shapes = st.one_of(st.lists(st.integers(-2, 40), min_size=1, max_size=4).map(lambda v: "x".join(map(str, v))), tokens)


def clean(result) -> None:
    assert result.exit_code in (0, 1, 2), result.exit_code
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code == 2:
        assert result.stderr.strip(), "an error must say something"


@settings(max_examples=300)
@given(shapes, st.lists(tokens, min_size=1, max_size=4), st.sampled_from(["shape", "explain", "run"]))
def test_random_tokens(shape, layers, command):
    args = [command, shape, *layers]
    if command == "run":
        args += ["--memory-limit", "64MiB"]
    clean(runner.invoke(app, args))


@settings(max_examples=150)
@given(shapes, tokens, st.sampled_from(["--target", "--undo", "--receptive-field"]))
def test_random_solve_and_compare(shape, layer, mode):
    args = ["solve", shape, layer] + ({"--target": ["--target", "4x?x?"], "--undo": ["--undo"],
                                        "--receptive-field": ["--receptive-field", "9"]}[mode])
    clean(runner.invoke(app, args))
    clean(runner.invoke(app, ["compare", shape, layer]))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=False, width=16),
              st.sampled_from(["conv", "Conv2d", "relu", "add", "same", "input", "$c", "x"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["type", "name", "from", "kernel_size", "out_channels",
                                                                "padding", "stride", "block", "params", "layers",
                                                                "repeat", "dim", "bogus"]), children, max_size=5)),
    max_leaves=12,
)
documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"input": st.lists(st.integers(-1, 20), max_size=4),
                           "layers": st.lists(json_values, max_size=4)}),
    st.fixed_dictionaries({"input": st.just([3, 16, 16]), "layers": st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["conv", "relu", "maxpool", "add", "concat", "convT", "linear", "flatten"]),
         "out_channels": st.integers(-1, 8), "kernel_size": st.integers(-1, 5)}), max_size=4)}),
)


@settings(max_examples=300)
@given(documents)
def test_random_documents(document):
    clean(runner.invoke(app, ["shape", "-f", "-"], input=json.dumps(document)))


@settings(max_examples=100)
@given(st.lists(st.one_of(documents.map(json.dumps), tokens), min_size=1, max_size=6))
def test_stream_keeps_good_lines(lines):
    good = json.dumps({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3}]})
    feed = [good] + [line.replace("\n", " ") for line in lines] + [good]
    result = runner.invoke(app, ["shape", "--stream", "-"], input="\n".join(feed) + "\n")
    clean(result)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["output_shape"] == [4, 6, 6] and out[-1]["output_shape"] == [4, 6, 6]
    assert len(out) == len(feed)  # one result per line, in order (a blank line: an error object)
