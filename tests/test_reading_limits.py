"""Reading is bounded: a file, stdin and each --stream line are read while counting and stopped at
the limit and one byte, with one error naming the limit and the variable that raises it (exit 2;
an error object for that line in a stream, which goes on after it). ONNX models have their own
limit, CONVCALC_MAX_ONNX_BYTES. /dev/zero ends every route, in bounded time and memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.engine.limits import limit

runner = CliRunner()
DOCUMENT = b'{"input": [3, 8, 8], "layers": [{"type": "relu"}]}'


@pytest.fixture
def limits(monkeypatch):
    """Set a limit through the environment, as a user would (limits are read once per process: the
    cache is cleared on the way in and out)."""
    def set_limit(name: str, value: int) -> None:
        monkeypatch.setenv(f"CONVCALC_{name}", str(value))
        limit.cache_clear()

    yield set_limit
    limit.cache_clear()


def _capped(args, stdin=subprocess.DEVNULL, env=None, seconds: float = 60):
    """Run convcalc in its own process with 1 GiB of address space at most and a time limit."""
    def cap():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    return subprocess.run([sys.executable, "-m", "convcalc", *args], stdin=stdin, capture_output=True, timeout=seconds,
                          env={**os.environ, **(env or {})}, preexec_fn=cap)


def test_stdin_past_the_limit_is_one_error(limits):
    limits("MAX_DOCUMENT_BYTES", len(DOCUMENT))
    assert runner.invoke(app, ["shape", "-f", "-", "--json"], input=DOCUMENT).exit_code == 0  # at the limit
    result = runner.invoke(app, ["shape", "-f", "-"], input=DOCUMENT + b" ")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: file: '-' is larger than the document limit of {len(DOCUMENT):,} bytes (CONVCALC_MAX_DOCUMENT_BYTES)",
        "hint: raise it with CONVCALC_MAX_DOCUMENT_BYTES"]


def test_a_file_past_the_limit_is_one_error(limits, tmp_path):
    limits("MAX_DOCUMENT_BYTES", 100)
    path = tmp_path / "net.json"
    path.write_bytes(DOCUMENT + b" " * 60)
    result = runner.invoke(app, ["shape", "-f", str(path), "--json"])
    assert result.exit_code == 2 and "larger than the document limit of 100 bytes" in result.stderr
    assert json.loads(result.stdout)["error"]["hint"] == "raise it with CONVCALC_MAX_DOCUMENT_BYTES"


def test_onnx_models_have_their_own_limit(limits, tmp_path):
    """What starts as an ONNX model does is held to CONVCALC_MAX_ONNX_BYTES (2 GiB by default), not
    to the document limit: a model larger than the document limit is read as a model."""
    model = b"\x08\x08\x3a\x00" + bytes(200)  # an ONNX header, then nothing a model holds
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    limits("MAX_DOCUMENT_BYTES", 100)
    result = runner.invoke(app, ["shape", "-f", str(path)])
    assert result.exit_code == 2 and "limit" not in result.stderr  # read, and refused as a model
    limits("MAX_ONNX_BYTES", 150)
    result = runner.invoke(app, ["shape", "-f", str(path)])
    assert result.exit_code == 2
    assert "larger than the ONNX model limit of 150 bytes (CONVCALC_MAX_ONNX_BYTES)" in result.stderr
    assert "hint: raise it with CONVCALC_MAX_ONNX_BYTES" in result.stderr
    result = runner.invoke(app, ["shape", "-f", "-"], input=model)
    assert result.exit_code == 2 and "ONNX model limit of 150 bytes" in result.stderr


def test_a_stream_line_past_the_limit_is_its_own_error(limits):
    from convcalc.cli.shape import SKIP_FACTOR

    limits("MAX_DOCUMENT_BYTES", len(DOCUMENT))
    longest = b"x" * (len(DOCUMENT) * SKIP_FACTOR)  # the longest line skipped, not the end of the stream
    lines = [DOCUMENT, longest, DOCUMENT, b"x" * (len(DOCUMENT) + 1), DOCUMENT]
    result = runner.invoke(app, ["shape", "--stream", "-"], input=b"\n".join(lines))
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5 and result.exit_code == 1
    assert [("error" in o) for o in out] == [False, True, False, True, False]
    assert out[1]["error"]["line"] == 2 and out[3]["error"]["line"] == 4
    assert out[1]["error"]["message"] == (f"document: the line is longer than the document limit of {len(DOCUMENT):,} "
                                          "bytes (CONVCALC_MAX_DOCUMENT_BYTES)")


def test_a_stream_line_with_no_end_in_sight_stops_the_stream(limits):
    from convcalc.cli.shape import SKIP_FACTOR

    limits("MAX_DOCUMENT_BYTES", 100)
    lines = [DOCUMENT, b"x" * (100 * SKIP_FACTOR), DOCUMENT, b"x" * (100 * SKIP_FACTOR + 200), DOCUMENT]
    out = [json.loads(line) for line in runner.invoke(app, ["shape", "--stream", "-"],
                                                      input=b"\n".join(lines)).stdout.splitlines()]
    assert len(out) == 4  # the stream stops at line 4
    assert "error" in out[1] and "stops" not in out[1]["error"]["message"] and "schema" in out[2]
    assert out[3]["error"]["line"] == 4 and out[3]["error"]["message"].endswith("the stream stops here")


@pytest.mark.parametrize("args", [["shape", "-f", "/dev/zero"], ["shape", "-f", "-"],
                                  ["shape", "--stream", "/dev/zero"], ["shape", "--stream", "-"],
                                  ["explain", "-f", "-"], ["convert", "-f", "-"]])
def test_dev_zero_ends(args):
    with open("/dev/zero", "rb") as zero:
        done = _capped(args, stdin=zero, env={"CONVCALC_MAX_DOCUMENT_BYTES": str(2**20)})
    assert done.returncode in (1, 2), done.stderr
    if "--stream" in args:
        assert done.returncode == 1
        (line,) = done.stdout.splitlines()
        assert json.loads(line)["error"]["message"].endswith("the stream stops here")
    else:
        assert "larger than the document limit of 1,048,576 bytes" in done.stderr.decode()


@pytest.mark.slow
def test_dev_zero_ends_at_the_default_limits():
    with open("/dev/zero", "rb") as zero:
        done = _capped(["shape", "--stream", "-"], stdin=zero, seconds=120)
    assert done.returncode == 1 and b"the stream stops here" in done.stdout
    done = _capped(["shape", "-f", "/dev/zero"], seconds=120)
    assert done.returncode == 2 and b"268,435,456 bytes" in done.stderr
