"""``--stream`` is ``-f --json``, line for line: each line of the stream gives what ``-f -`` of that
line with ``--json`` and the same options prints (the same document route), one output line per
input line, whatever the line holds: a document with outputs, frozen parameters or blocks, a bad
one, an empty line, or a line of \\x1c or U+2028 (where str.splitlines would split)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()

BLOCKS = {"input": [3, 16, 16], "blocks": {"basic": {"params": ["channels"], "layers": [
    {"type": "conv", "out_channels": "$channels", "kernel_size": 3, "padding": 1, "bias": False, "name": "conv1"},
    {"type": "bn", "name": "bn1"}, {"type": "relu", "name": "act"}, {"type": "add", "from": ["act", "input"]}]}},
    "layers": [{"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "stem"},
               {"block": "basic", "channels": 8, "repeat": 2, "name": "layer1"}]}
OUTPUTS = {"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "a"},
                                          {"type": "relu", "name": "b", "from": "a"},
                                          {"type": "conv", "out_channels": 2, "kernel_size": 1, "from": "a"}],
           "outputs": ["b"]}
FROZEN = {"input": [3, 8, 8], "layers": [
    {"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "a",
     "tensors": {"weight": "a.weight", "bias": "a.bias"}},
    {"type": "linear", "out_features": 10, "name": "fc"}], "frozen": ["a.weight"]}
LINES = [
    json.dumps(BLOCKS).encode(),
    json.dumps(OUTPUTS).encode(),
    json.dumps(FROZEN).encode(),
    b'{"input": [3, 8, 8], "batch": 2, "dtype": "bfloat16", "layers": [{"type": "maxpool", "kernel_size": 2}]}',
    b"{input: [3, 8, 8], layers: [{type: conv, out_channels: 2, kernel_size: 3}]}",  # YAML's flow style
    b'{"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 9}]}',  # refused
    b"{not json",
    b"\x1c",
    "\u2028".encode(),
    "\u2028{\"input\": [3], \"layers\": []}\x85".encode(),
    b"",
    b"  \t\r",
    b'{"input": [3, 8, 8], "layers": [{"type": "relu", "name": "a\\u001b]8;;x\\u0007"}]}\r',
]
OPTIONS = [[], ["--device", "t4"], ["--optimizer", "sgd"], ["--batch", "4"], ["--dtype", "float16"],
           ["--device", "t4", "--optimizer", "sgd", "--batch", "4", "--dtype", "float16"], ["3x16x16"],
           ["--peak", "10T", "--bandwidth", "1TB/s"]]


def _alone(line: bytes, options: list[str]) -> dict:
    """What -f - --json prints for ``line`` (the error object on an error)."""
    result = runner.invoke(app, ["shape", "-f", "-", "--json", *options], input=line)
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("options", OPTIONS, ids=" ".join)
def test_each_stream_line_is_what_f_json_prints_for_it(options):
    result = runner.invoke(app, ["shape", "--stream", "-", *options], input=b"\n".join(LINES) + b"\n")
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(LINES)  # one line out per line in
    failed = False
    for number, (line, text) in enumerate(zip(LINES, out), 1):
        got, alone = json.loads(text), _alone(line, options)
        if "error" in got:
            failed = True
            assert got["error"].pop("line") == number
        assert got == alone, (number, line)
    assert result.exit_code == (1 if failed else 0)


def test_what_the_stream_dropped_before():
    out = [json.loads(line) for line in runner.invoke(
        app, ["shape", "--stream", "-", "--optimizer", "sgd", "--device", "t4"],
        input=b"\n".join(LINES[1:3])).stdout.splitlines()]
    assert [layer["index"] for layer in out[0]["layers"]] == [1, 2, 3]  # outputs: a valid document is read
    assert out[1]["totals"]["trainable_params"] == out[1]["totals"]["params"] - 4 * 3 * 3 * 3  # a.weight frozen
    assert out[1]["totals"]["training"]["optimizer"] == "sgd"
    assert out[1]["totals"]["roofline"]["device"].startswith("NVIDIA T4") or out[1]["totals"]["roofline"]["device"]


def test_a_blank_line_is_an_empty_document():
    out = runner.invoke(app, ["shape", "--stream", "-"], input=b'{"input": [3], "layers": []}\n\n \n').stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3 and "schema" in lines[0]
    assert [(line["error"]["line"], line["error"]["message"]) for line in lines[1:]] == [
        (2, "document: the document is empty"), (3, "document: the document is empty")]


def test_a_line_without_its_newline_at_the_end_counts():
    out = runner.invoke(app, ["shape", "--stream", "-"], input=b'{"input": [3], "layers": []}').stdout
    assert len(out.splitlines()) == 1 and json.loads(out)["input_shape"] == [3]


@pytest.mark.parametrize("args", [["--format", "csv"], ["--format", "table"], ["--format", "markdown"],
                                  ["relu"], ["3x8x8", "relu"], ["--preset", "resnet18"], ["-f", "-"]])
def test_what_the_stream_cannot_honour_is_refused(args):
    result = runner.invoke(app, ["shape", "--stream", "-", *args], input=b"")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


@pytest.mark.parametrize("args", [["--json"], ["--format", "json"], ["--format", "ndjson"], ["--depth", "1"]])
def test_options_that_change_no_json_are_accepted(args):
    result = runner.invoke(app, ["shape", "--stream", "-", *args], input=LINES[0])
    assert result.exit_code == 0 and json.loads(result.stdout) == _alone(LINES[0], [])


def test_each_result_comes_out_before_the_next_line_is_read():
    """A stream is answered as it comes: the result of a line is printed (and flushed) before the
    next line arrives, so a slow line holds back only itself."""
    child = subprocess.Popen([sys.executable, "-m", "convcalc", "shape", "--stream", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        for line in LINES[:3]:
            child.stdin.write(line + b"\n")
            child.stdin.flush()
            assert "schema" in json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        child.wait(timeout=60)


def _capped(args, stdin: bytes, limit_env: dict, seconds: float = 120):
    env = {**os.environ, **limit_env}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "convcalc", *args], input=stdin, capture_output=True, env=env,
                          timeout=seconds)
    return done, time.monotonic() - start


@pytest.mark.slow
def test_a_line_at_each_limit_finishes_in_bounded_time():
    """A line as large as the limits let it be takes seconds, not hours: the lines after it wait
    that long at most (docs/limits.md gives the times measured)."""
    layers = 500_000  # CONVCALC_MAX_LAYERS's default
    line = json.dumps({"input": [4], "layers": [{"type": "relu"}] * layers}).encode()
    done, seconds = _capped(["shape", "--stream", "-"], line + b"\n" + LINES[0] + b"\n", {}, 600)
    out = done.stdout.splitlines()
    assert len(out) == 2 and json.loads(out[1])["input_shape"] == [3, 16, 16]
    print(f"a line of {layers:,} layers: {seconds:.1f} s")
    values = b'{"input": [4], "layers": [{"type": "relu"}], "description": [' + b"0," * 9_999_990 + b"0]}"
    done, seconds = _capped(["shape", "--stream", "-"], values + b"\n" + LINES[0] + b"\n", {}, 600)
    assert len(done.stdout.splitlines()) == 2
    print(f"a line of 10,000,000 values ({len(values):,} bytes): {seconds:.1f} s")
    big = b'{"input": [4], "layers": [{"type": "relu"}]}' + b" " * (256 * 2**20 - 60)
    done, seconds = _capped(["shape", "--stream", "-"], big + b"\n" + LINES[0] + b"\n", {}, 600)
    assert len(done.stdout.splitlines()) == 2
    print(f"a line of 256 MiB: {seconds:.1f} s")
