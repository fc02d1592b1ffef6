"""Hostile input: whatever it contains, no traceback; bad input exits 2 and refused work exits 1,
each with a message; time and memory stay bounded by the input's size, not by its numbers; a
stream loses no good line. Each named case runs in its own process under a memory cap."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc.cli import app

MEMORY_CAP = 3 * 2**30  # RLIMIT_AS for each case
SECONDS = 20
BIG = "9" * 400
HUGE = "9" * 5000


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(args, stdin: bytes = b"", env=None):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "convcalc", *args], input=stdin, capture_output=True,
                            timeout=SECONDS, preexec_fn=_capped, env=env)
    return result, time.perf_counter() - start


ALIAS_BOMB = "\n".join([f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi")])
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + ALIAS_BOMB + "\ninput: [3, 8, 8]\nlayers: *i\n"
NESTED_BLOCKS = ("input: [3, 8, 8]\nblocks:\n  a: {layers: [{type: relu}]}\n"
                 + "".join(f"  {b}: {{layers: [{{block: {a}, repeat: 1000}}]}}\n" for a, b in zip("abcd", "bcde"))
                 + "layers: [{block: e}]\n")

CASES = {
    # numbers
    "400-digit size": (["shape", f"1x{BIG}", "conv:1,k=1"], 2),
    "5000-digit argument": (["shape", "3x8x8", f"conv:1,k={HUGE}"], 2),
    "infinite dropout": (["shape", "3x8x8", "dropout:inf"], 2),
    "infinite upsampling": (["shape", "3x8x8", "up:inf"], 2),
    "1e400": (["shape", "3x8x8", "up:1e400"], 2),
    "nan padding": (["shape", "3x8x8", "conv:2,k=3,p=nan"], 2),
    "unicode digit position": (["explain", "1x5", "conv:1,k=3", "--at", "²"], 2),
    "negative seed": (["run", "3x8x8", "relu", "--seed", "-1"], 2),
    "infinite memory limit": (["run", "3x8x8", "relu", "--memory-limit", "inf"], 2),
    "huge solve sizes": (["solve", "3x100000000000000000000", "conv:64,k=3,p=?", "--target", "64x7"], 2),
    "concat dim 99": (["shape", "3x8x8", "concat:99"], 2),
    "peak of 1e400": (["shape", "3x8x8", "relu", "--peak", "1e400", "--bandwidth", "1G"], 2),
    "infinite bandwidth": (["shape", "3x8x8", "relu", "--device", "t4", "--bandwidth", "inf"], 2),
    "a 400-digit peak": (["compare", "8x8x8", "conv:8,k=3", "--peak", BIG, "--bandwidth", "1G"], 2),
    "a device named by escapes": (["shape", "3x8x8", "relu", "--device", "\x1b[2Jt4"], 2),
    # work that would grow with the numbers
    "transposed kernel of 10^9": (["shape", "3x8", "convT:4,k=1000000000"], 0),
    "adaptive pooling of 10^9": (["shape", "3x1000000007", "aap:999999937"], 0),
    "two large transposed kernels": (["shape", "3x64", "convT:1,k=10000", "convT:1,k=10000"], 0),
    "group hint over 10^9 channels": (["shape", "1000000000x1x1", "conv:1000000007,k=1,g=3"], 2),
    "compare 10^9 channels": (["compare", "1000000007x1x1", "conv:1000000009,k=1"], 0),
    "explain a long transposed input": (["explain", "1x1000000000", "convT:1,k=3,s=2"], 0),
    "explain a large matrix": (["explain", "1x1000x1000", "conv:1,k=1", "--matrix"], 2),
    "solve a 10^9 range": (["solve", "3x224x224", "conv:64,k=?,s=2,p=?", "--target", "64x112x112", "--range",
                            "k=1..1000000000"], 2),
    "solve many unknowns": (["solve", "3x224x224", "conv:64,k=?,s=?,p=?,d=?", "--target", "64x112x112",
                             "--range", "p=0..1000", "--range", "k=1..1000", "--range", "s=1..1000"], 2),
    "conv4d": (["shape", "3x4x4x4x4", "conv:8,k=3"], 2),
    "maxpool4d": (["shape", "3x4x4x4x4", "maxpool:2"], 2),
    # run's memory guard counts the weights
    "run a 400 MB linear under 300 MiB": (["run", "10000", "linear:10000", "--memory-limit", "300MiB"], 1),
    "run a 4 GB linear under 1 GiB": (["run", "100000", "linear:10000", "--memory-limit", "1GiB"], 1),
    # documents
    "YAML alias bomb": (["shape", "-f", "-"], 2, ALIAS_BOMB.encode()),
    "self-referencing alias": (["shape", "-f", "-"], 2, b"a: &a [1, *a]\ninput: [3]\nlayers: []\n"),
    "repeat a billion times": (["shape", "-f", "-"], 2,
                               b"input: [3,8,8]\nblocks: {b: {layers: [{type: relu}]}}\nlayers: [{block: b, repeat: 1000000000}]\n"),
    "blocks multiplying to 10^12": (["shape", "-f", "-"], 2, NESTED_BLOCKS.encode()),
    "JSON nested 1000 deep": (["shape", "-f", "-"], 2, b"[" * 1000 + b"]" * 1000),
    "YAML nested 1000 deep": (["shape", "-f", "-"], 2, b"a: " + b"[" * 1000 + b"]" * 1000 + b"\n"),
    "print(model) nested 1000 deep": (["shape", "-f", "-", "--input", "3x8x8"], 2,
                                      ("".join(f"{'  ' * i}(m{i}): Sequential(\n" for i in range(1000))
                                       .replace("(m0): ", "", 1) + ")\n" * 1000).encode()),
    "a date value": (["shape", "-f", "-"], 2, b"input: [3,8,8]\nlayers: [{type: relu, at: 2001-01-01}]\n"),
    "binary YAML value": (["shape", "-f", "-"], 2, b"input: [3,8,8]\nlayers: [{type: !!binary aGk=}]\n"),
    "JSON Infinity": (["shape", "-f", "-"], 2, b'{"input": [3, 8, 8], "layers": [{"type": "dropout", "p": Infinity}]}'),
    "YAML .inf": (["shape", "-f", "-"], 2, b"input: [3,8,8]\nlayers: [{type: up, scale_factor: .inf}]\n"),
    "not UTF-8": (["shape", "-f", "-"], 2, b"\xff\xfe\x00garbage"),
    "terminal escapes": (["shape", "3x8x8", "conv\x1b]0;owned\x07\x1b[2J:4"], 2),
    "unused count of 400 digits": (["shape", "-f", "-"], 2, ('{"input": [3], "layers": [{"type": "relu"}], "unused": '
                                   '[{"module": "aux", "params": %s, "trainable": 0, "read": false}]}' % BIG).encode()),
    "unused trainable above its count": (["shape", "-f", "-"], 2, b'{"input": [3], "layers": [{"type": "relu"}], '
                                         b'"unused": [{"module": "a\u001b[2J", "params": 1, "trainable": 2, "read": true}]}'),
    "unreturned naming no output": (["shape", "-f", "-"], 2,
                                    b'{"input": [3], "layers": [{"type": "relu", "name": "r"}], "unreturned": ["r"]}'),
    "unreturned named twice": (["shape", "-f", "-"], 2, b'{"input": [3], "layers": [{"type": "relu", "name": "a"}, '
                               b'{"type": "relu"}], "outputs": ["a"], "unreturned": ["a", "a"]}'),
    "unused counts over 2^62 in all": (["shape", "-f", "-"], 2, ('{"input": [3], "layers": [{"type": "relu"}], "unused": ['
                                       + ", ".join(['{"module": "m", "params": %d, "trainable": 0, "read": false}' % 2**61]
                                                   * 3) + "]}").encode()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_case(name):
    args, expected, *stdin = CASES[name]
    result, seconds = run_capped(args, stdin[0] if stdin else b"")
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr[-2000:]
    assert result.returncode == expected, (result.returncode, stderr[-500:])
    if expected:
        assert stderr.startswith("error:") and "hint:" in stderr, stderr[:500]
        assert "\x1b" not in stderr and "\x07" not in stderr  # nothing from the input drives the terminal
    assert seconds < SECONDS


def test_dev_zero_is_refused_within_the_document_limit():
    result, _ = run_capped(["shape", "-f", "/dev/zero"], env={"CONVCALC_MAX_DOCUMENT_BYTES": "1000000",
                                                              "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and b"limit" in result.stderr and b"Traceback" not in result.stderr


def test_a_stream_loses_no_good_line():
    good = b'{"input": [3, 8, 8], "layers": [{"type": "relu"}]}\n'
    lines = [good, b"\xff\xfe not utf-8\n", good, ALIAS_BOMB.replace("\n", " ").encode() + b"\n", good,
             b'{"input": [3,8,8], "blocks": {"b": {"layers": [{"type": "relu"}]}}, '
             b'"layers": [{"block": "b", "repeat": 1000000000}]}\n', good, b"[" * 5000 + b"\n", good]
    result, _ = run_capped(["shape", "--stream", "-"], b"".join(lines))
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(lines)
    for number, (line, record) in enumerate(zip(lines, records), start=1):
        if line == good:
            assert record["output_shape"] == [3, 8, 8]
        else:
            assert record["error"]["line"] == number and record["error"]["type"] != "InternalError"


def test_a_closed_pipe_ends_quietly_and_a_failed_write_is_an_error():
    command = f"{sys.executable} -m convcalc shape --stream - | head -1"
    many = b'{"input": [3, 8, 8], "layers": [{"type": "relu"}]}\n' * 20000
    piped = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], input=many, capture_output=True,
                           timeout=SECONDS)
    assert piped.returncode == 141 and piped.stderr == b"" and piped.stdout.count(b"\n") == 1
    # help, which Rich lays out, ends as quietly (Rich points stdout at /dev/null and exits 1 there)
    helped = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m convcalc --help | head -1"],
                            capture_output=True, timeout=SECONDS)
    assert helped.returncode == 141 and helped.stderr == b"" and helped.stdout.count(b"\n") == 1
    full = subprocess.run(["bash", "-c", f"{sys.executable} -m convcalc shape 3x8x8 relu > /dev/full"],
                          capture_output=True, timeout=SECONDS)
    assert full.returncode == 1 and b"cannot write the output" in full.stderr
    closed = subprocess.run(["bash", "-c", f"{sys.executable} -m convcalc shape 3x8x8 relu >&-"],
                            capture_output=True, timeout=SECONDS)
    assert closed.returncode == 1 and b"cannot write" in closed.stderr


HOSTILE_TEXT = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "1e400", BIG, "²", "٣", "0", "-1", "2^62", "9" * 30, "", "x", "?",
                     "\x1b[2J", "\x00", "1x", "x1", "3x-1"]),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
)
KINDS = ["conv", "convT", "maxpool", "avgpool", "aap", "bn", "up", "pad", "linear", "reshape", "permute", "chunk",
         "layernorm", "groupnorm", "softmax", "mean", "mul", "interpolate", "pixelshuffle", "select", "narrow"]
KEYS = ["k", "s", "p", "d", "g", "op", "scale", "dim", "shape", "dims", "size", "mode", "scalar", "weight_shape"]


@settings(max_examples=300)
@given(st.sampled_from(KINDS), st.lists(st.tuples(st.sampled_from(KEYS + [""]), HOSTILE_TEXT), max_size=3),
       HOSTILE_TEXT, st.sampled_from(["shape", "explain", "run", "compare"]))
def test_hostile_tokens_never_trace_back(kind, arguments, size, command):
    token = kind + (":" + ",".join(f"{k}={v}" if k else v for k, v in arguments) if arguments else "")
    shape = f"3x{size}" if command != "compare" else f"3x{size}x8"
    result = CliRunner().invoke(app, [command, shape, token], catch_exceptions=True)
    assert result.exit_code in (0, 1, 2), (token, shape, result.exit_code)
    assert result.exception is None or isinstance(result.exception, SystemExit), (token, shape,
                                                                                   repr(result.exception))


@pytest.mark.parametrize("wiring", ["outputs", "from"])
def test_a_missing_name_among_thousands_gets_a_short_hint(wiring):
    # The hint names a few layers and counts the rest: the error stays one short
    # line however many layers the document names.
    layers = [{"type": "relu", "name": f"layer{i}"} for i in range(20000)]
    document = {"input": [1, 4, 4], "layers": layers}
    if wiring == "outputs":
        document["outputs"] = ["nope" * 1000]
    else:
        layers.append({"type": "relu", "from": "nope" * 1000})
    result = CliRunner().invoke(app, ["shape", "-f", "-"], input=json.dumps(document))
    assert result.exit_code == 2
    hint = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    named = 20000 + (wiring == "from")  # "from" may also name the input
    assert len(hint) == 1 and hint[0].endswith(f"(and {named - 8} more)") and len(hint[0]) < 200
    assert len(result.stderr) < 1000  # the name itself is cut short too
