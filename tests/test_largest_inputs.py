"""The largest input each limit allows, in a capped process: it is answered (or refused by the limit
just past it) within the budget stated here, 3 GiB of address space and ten minutes, on a 2-core
machine. Slow: CI runs it after the default run."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

BUDGET_BYTES = 3 * 2**30
BUDGET_SECONDS = 600  # a hang guard, not a timing target: the machine is shared


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (BUDGET_BYTES, BUDGET_BYTES))


def _run(args, stdin: bytes):
    return subprocess.run([sys.executable, "-m", "convcalc", *args], input=stdin, capture_output=True,
                          timeout=BUDGET_SECONDS, preexec_fn=_capped)


def _assert_answered(result, expected: int) -> None:
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "MemoryError" not in stderr, stderr[-1000:]
    assert result.returncode == expected, (result.returncode, stderr[-500:])


def test_a_document_at_the_layer_limit():
    layers = [{"type": "conv", "out_channels": 4, "kernel_size": 1}] + [{"type": "relu"}] * (500_000 - 1)
    document = json.dumps({"input": [3, 8, 8], "layers": layers}).encode()
    _assert_answered(_run(["shape", "-f", "-", "--json"], document), 0)


def test_one_layer_past_the_layer_limit_is_refused():
    document = json.dumps({"input": [3, 8, 8], "layers": [{"type": "relu"}] * 500_001}).encode()
    result = _run(["shape", "-f", "-"], document)
    _assert_answered(result, 2)
    assert b"500,000 layers" in result.stderr


def test_a_document_at_the_byte_limit():
    # 256 MiB of one layer object's remark: read, counted and refused as over the value limit, or answered
    body = json.dumps({"input": [3, 8, 8], "layers": [{"type": "relu", "remark": ["x" * 1000] * 10}]})
    padding = 256 * 2**20 - len(body)
    document = (body[:-1] + " " * padding + "}").encode()
    assert len(document) == 256 * 2**20
    _assert_answered(_run(["shape", "-f", "-", "--json"], document), 0)
    _assert_answered(_run(["shape", "-f", "-"], document + b" "), 2)  # one byte more: refused


def test_values_at_the_limit_in_aliases_and_block_instances():
    big = "[" + ", ".join(["x"] * 10_000) + "]"  # 10,001 values
    document = (f"input: [3, 8, 8]\nblocks:\n  b: {{layers: [{{type: relu, remark: &big {big}}}]}}\n"
                "  c: {layers: [{type: relu, remark: *big}]}\nlayers: [{block: c, repeat: 900}]\n").encode()
    _assert_answered(_run(["shape", "-f", "-", "--json"], document), 0)  # 9 million values copied
    _assert_answered(_run(["shape", "-f", "-"], document.replace(b"repeat: 900", b"repeat: 1000")), 2)


def test_a_receptive_field_at_its_work_limit():
    # the periodic shortcut answers the long kernel; stacked wide strides reach the work limit and are refused
    _assert_answered(_run(["shape", "1x100", "convt:1,k=1,s=4093", "conv:1,k=100000"], b""), 0)
    _assert_answered(_run(["shape", "1x20", "convt:1,k=3,s=4093", "convt:1,k=3,s=4091", "conv:1,k=100000"], b""), 1)
