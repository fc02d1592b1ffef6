"""An input that looks batch-included is noted on every route that reads one (tokens, documents,
presets, PyTorch models; every command), on stderr, whether the command succeeds or fails; and a
document converted from a traced model says which input it was traced at."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()
NOTE = "looks like it includes the batch; did you mean 3x16x16 with --batch 1?"

TINY = '''
import torch.nn as nn


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
'''


@pytest.mark.parametrize("args", [
    ["shape", "1x3x16x16", "conv:4,k=3"],
    ["shape", "1x3x16x16", "conv:4,k=3", "--format", "csv"],
    ["run", "1x3x16x16", "conv:4,k=3"],
    ["explain", "1x3x16x16", "conv:4,k=3"],
    ["compare", "1x3x16x16", "conv:4,k=3"],
    ["solve", "1x3x16x16", "conv:4,k=?", "--target", "4x1x14x14"],
    ["convert", "1x3x16x16", "conv:4,k=3"],
], ids=lambda args: " ".join(args[:1] + args[-2:]))
def test_every_command_notes_a_batch_included_input_of_tokens(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    shown = result.stderr if args[0] != "explain" else result.stdout  # explain's notes are its text
    assert NOTE in shown
    assert NOTE not in result.stdout or args[0] == "explain"


def test_a_document_and_a_preset_note_it_too(tmp_path):
    document = tmp_path / "net.json"
    document.write_text(json.dumps({"input": [1, 3, 16, 16], "layers": [{"type": "relu"}]}))
    assert NOTE in runner.invoke(app, ["shape", "-f", str(document)]).stderr
    failed = runner.invoke(app, ["shape", "--preset", "resnet18", "1x3x16x16"])  # Conv2d refuses a 3-d input
    assert failed.exit_code == 2
    error, *rest = failed.stderr.splitlines()
    assert error.startswith("error: layer 1") and f"note: the input 1x3x16x16 {NOTE}" in rest[-1]


@pytest.mark.needs_torch
def test_a_pytorch_model_that_cannot_trace_the_input_says_why_it_may_be(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["shape", "--model", f"{path}:tiny", "1x3x16x16", *extra])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr.startswith("error: model: ")
        assert result.stderr.splitlines()[-1].startswith(f"note: the input 1x3x16x16 {NOTE}")
        if extra:
            assert json.loads(result.stdout)["error"]["type"] == "SpecError"  # the error object, and only it


@pytest.mark.needs_torch
def test_a_converted_model_says_which_input_it_was_traced_at(tmp_path):
    """The YAML starts with a comment naming the model and the input; it reads back (YAML skips the
    comment) to the module's own parameter count, and a network that was never traced says nothing."""
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    text = runner.invoke(app, ["convert", "--model", f"{path}:tiny", "3x16x16"]).stdout
    comment = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    assert " ".join(comment).startswith(f"traced from the PyTorch model {path}:tiny at input 3x16x16 (batch 1): "
                                        "the sizes written below (reshapes, flattened features, output sizes) are "
                                        "that input's")
    assert yaml.safe_load(io.StringIO(text))["input"] == [3, 16, 16]
    copy = tmp_path / "tiny.yaml"
    copy.write_text(text)
    params = json.loads(runner.invoke(app, ["shape", "-f", str(copy), "--json"]).stdout)["totals"]["params"]
    namespace: dict = {}
    exec(TINY, namespace)
    assert params == sum(p.numel() for p in namespace["tiny"]().parameters())
    assert not runner.invoke(app, ["convert", "3x16x16", "conv:4,k=3"]).stdout.startswith("#")


@pytest.mark.needs_torch
@pytest.mark.needs_onnx
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, chosen for a fixed shape
def test_a_converted_onnx_file_says_which_input_it_was_exported_at(tmp_path):
    import torch

    namespace: dict = {}
    exec(TINY, namespace)
    model = namespace["tiny"]().eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17)
    text = runner.invoke(app, ["convert", "-f", str(path)]).stdout
    comment = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert text.startswith("# ") and comment.startswith(f"traced from the ONNX file {path} at input 3x16x16 (batch 1): ")
