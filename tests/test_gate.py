"""One gate for every network: whatever reader built it, the input's sizes, the batch and every layer
argument pass the same checks before analysis (sizes below 2^62, finite floats, each kind's rule)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc import Network, analyse
from convcalc.cli import app
from convcalc.engine.errors import ConvcalcError
from convcalc.engine.layers import Activation, Conv, Opaque, Upsample

runner = CliRunner()


def _refused(args, stdin=None, *words):
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error:")
    for word in words:
        assert word in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("document, words", [
    ({"input": [3, 9999999999999999999], "layers": [{"type": "relu"}]}, ("input", "2^62")),
    ({"input": [3, 8], "batch": 10**32, "layers": [{"type": "relu"}]}, ("digits",)),
    ({"input": [3, 8], "batch": 1e32, "layers": [{"type": "relu"}]}, ("batch",)),
    ({"input": [3, 1e29], "layers": [{"type": "relu"}]}, ("input",)),
    ({"input": [0, 8], "layers": [{"type": "relu"}]}, ("input",)),
    ({"input": [3, 8], "layers": [{"type": "opaque", "op": "x", "output": [-5, 8]}]}, ("negative",)),
    ({"input": [3, 8], "layers": [{"type": "leakyrelu", "negative_slope": float("nan")}]}, ("finite",)),
    ({"input": [3, 8], "layers": [{"type": "hardtanh", "min_val": float("-inf")}]}, ("finite",)),
])
def test_documents(document, words):
    _refused(["shape", "-f", "-"], json.dumps(document), *words)


def test_the_batch_option():
    _refused(["shape", "3x8x8", "relu", "--batch", str(10**30)], None, "batch")


@pytest.mark.parametrize("layer, words", [
    (Activation("LeakyReLU", negative_slope=float("nan")), "negative_slope"),
    (Activation("Hardtanh", min_val=float("-inf")), "min_val"),
    (Conv(4, 3, stride=2**63), "stride"),
    (Conv(4, 3, padding="sideways"), "padding"),
    (Upsample(scale_factor=float("inf")), "scale_factor"),
    (Opaque("op", (2**63, 8)), "output"),
])
def test_layers_a_reader_built_are_checked_too(layer, words):
    """A reader that builds layers from a file's numbers (ONNX, a trace) cannot get past the gate."""
    with pytest.raises(ConvcalcError, match=words) as caught:
        analyse(Network((3, 8, 8), (Conv(3, 1), layer)))
    assert caught.value.layer == 2


@pytest.mark.parametrize("shape, batch", [((3, 2**62 + 1), 1), ((3, 8), 2**62 + 1), ((3, 8), 0), ((3, 8), True),
                                          ((), 1), ((3, 8.0), 1)])
def test_inputs_and_batches(shape, batch):
    with pytest.raises(ConvcalcError):
        analyse(Network(shape, (), batch))


def test_the_largest_values_pass():
    analysis = analyse(Network((3, 2**62), (), 2**62))
    assert analysis.output_shape == (3, 2**62)


@pytest.mark.parametrize("token, size", [("split:1,dim=3,index=5", 1),
                                         ("chunk:1000000000000,dim=3,index=3", -(-2**62 // 10**12))])
def test_pieces_of_a_huge_axis_are_found_without_listing_them(token, size):
    """An axis of 2^62 units in pieces of one: piece k is computed, not found in a list of 2^62."""
    result = runner.invoke(app, ["shape", f"3x8x{2**62}", token, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output_shape"][2] == size  # chunks of ceil(n / chunks), as torch.chunk


def test_a_long_cycle_is_found_in_linear_time_and_named_in_one_short_line():
    """80,000 layers reading each other in a ring (105 s before, and an error line naming them all)."""
    count = 80_000
    layers = [{"type": "relu", "name": f"l{i}", "from": f"l{(i + 1) % count}"} for i in range(count)]
    result = runner.invoke(app, ["shape", "-f", "-"], json.dumps({"input": [3, 8, 8], "layers": layers}))
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert "l0 → l1" in first and "(79,992 more) → l0" in first and len(first) < 400


def test_a_cycle_after_a_chain_names_only_the_layers_in_it():
    layers = [{"type": "relu", "name": "a"}, {"type": "relu", "name": "b", "from": "d"},
              {"type": "relu", "name": "c", "from": "b"}, {"type": "relu", "name": "d", "from": "c"}]
    result = runner.invoke(app, ["shape", "-f", "-"], json.dumps({"input": [3, 8], "layers": layers}))
    assert result.exit_code == 2 and "cycle: b → d → c → b" in result.stderr


@pytest.mark.parametrize("text, words", [
    ("input: [3,8,8]\nblocks:\n  b: {layers: [{type: conv, out_channels: " + "9" * 5000 + ", kernel_size: 1}]}\n"
     "layers: [{block: b}]\n", "more than 19 digits"),
])
def test_huge_numbers_in_yaml(text, words):
    result = runner.invoke(app, ["shape", "-f", "-"], text)
    assert result.exit_code == 2 and words in result.stderr


def test_constructor_text_that_is_not_utf8():
    token = b"Conv2d(3, 4, \xff)".decode("utf-8", "surrogateescape")  # as the shell hands over invalid bytes
    result = runner.invoke(app, ["shape", "3x8x8", token])
    assert result.exit_code == 2 and "not UTF-8" in result.stderr and "Traceback" not in result.output


def test_an_alias_copied_into_every_block_instance_is_counted_in_every_copy():
    """A 30 KB document whose 10,000-value alias sits in a block repeated 400,000 times: refused by the
    value limit before copying (it took gigabytes when the alias counted once)."""
    big = "[" + ", ".join(["[" + ", ".join(["x"] * 100) + "]"] * 100) + "]"
    document = (f"input: [3, 8, 8]\nblocks:\n  b: {{layers: [{{type: relu, remark: &big {big}}}]}}\n"
                "  c: {layers: [{type: relu, remark: *big}]}\nlayers: [{block: c, repeat: 400000}]\n")
    result = runner.invoke(app, ["shape", "-f", "-"], document)
    assert result.exit_code == 2 and "block instances hold more than" in result.stderr


@pytest.mark.parametrize("document", [
    {"input": [3, 8, 8], "layers": [{"type": "relu", "name": "a" * 10**6}, {"type": "relu", "from": "b" * 10**6}]},
    {"input": [3, 8, 8], "layers": [{"type": "a" * 10**6}]},
    {"input": [3, 8, 8], "a" * 10**6: 1},
    {"input": [3, 8, 8], "layers": [{"type": "relu", "a" * 10**6: 1}]},
])
def test_a_megabyte_of_input_makes_no_megabyte_error_line(document):
    result = runner.invoke(app, ["shape", "-f", "-"], json.dumps(document))
    assert result.exit_code == 2 and result.stderr.startswith("error:")
    assert max(len(line) for line in result.stderr.splitlines()) < 1000, result.stderr[:300]
    assert "characters)" in result.stderr  # says how long what it cut was


def test_print_model_text_with_a_megabyte_key():
    text = "Net(\n  (" + "a" * 10**6 + "): Conv2d(3, 4, kernel_size=(1, 1), foo=1)\n)\n"
    result = runner.invoke(app, ["shape", "-f", "-", "--input", "3x8x8"], text)
    assert result.exit_code == 2 and max(len(line) for line in result.stderr.splitlines()) < 1000
