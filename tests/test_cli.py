"""The command line, invoked in-process: every output mode, errors and streaming."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, list(args), input=input)


# Worked by hand: conv k3 s2 p1 on 5x5 -> 3x3; transposed k3 s2 p1 back to 5x5; nearest x2 -> 10x10.
# Memory: the input is 100 B, the outputs 36, 100 and 400 B. Inference holds input + conv output (136),
# then conv + transposed outputs (136), then transposed + upsampled (500: the peak, at layer 3). Training
# saves each convolution's input (100 and 36 B; nearest upsampling saves nothing); with Adam, 20
# parameters take 80 B, their gradients 80 B and Adam's two moments 160 B: 80 + 80 + 160 + 136 = 456.
# Roofline bytes: input, weights and output once: 100 + 40 + 36, 36 + 40 + 100 and 100 + 400, over which
# the FLOPs give the intensities 171/176, 187/176 = 17/16 and 0 (no device: no bound).
# Backward: the first convolution needs only its weight's gradient (the input needs none), one product per
# forward product (81); the transposed one its weight's and its input's (81 + 81); nearest upsampling only
# sums gradients (0): training MACs 162 forward + 243 backward = 405.
GOLDEN = {
    "schema": "convcalc.shape/1",
    "input_shape": [1, 5, 5],
    "batch": 1,
    "dtype": "float32",
    "layers": [
        {
            "index": 1, "name": None, "from": ["input"], "path": [], "type": "Conv2d", "summary": "1→1 k=3 s=2 p=1",
            "input_shape": [1, 5, 5], "output_shape": [1, 3, 3],
            "params": 10, "macs": 81, "backward_macs": 81, "flops": 171, "activation_bytes": 36, "param_bytes": 40,
            "trainable_params": 10, "counted": True, "saved_bytes": 100,
            "roofline": {"bytes": 176, "intensity": "171/176", "bound": None, "seconds": None},
            "receptive_field": {"size": [3, 3], "jump": [2, 2], "padding": [1, 1], "center": [0, 0],
                                "varies": [False, False]},
            "notes": [],
        },
        {
            "index": 2, "name": None, "from": ["#1"], "path": [], "type": "ConvTranspose2d", "summary": "1→1 k=3 s=2 p=1",
            "input_shape": [1, 3, 3], "output_shape": [1, 5, 5],
            "params": 10, "macs": 81, "backward_macs": 162, "flops": 187, "activation_bytes": 100, "param_bytes": 40,
            "trainable_params": 10, "counted": True, "saved_bytes": 36,
            "roofline": {"bytes": 176, "intensity": "17/16", "bound": None, "seconds": None},
            "receptive_field": {"size": [5, 5], "jump": [1, 1], "padding": [2, 2], "center": [0, 0],
                                "varies": [True, True]},
            "notes": ["receptive fields differ between output positions (size or placement); the largest size is reported"],
        },
        {
            "index": 3, "name": None, "from": ["#2"], "path": [], "type": "Upsample", "summary": "×2 nearest",
            "input_shape": [1, 5, 5], "output_shape": [1, 10, 10],
            "params": 0, "macs": 0, "backward_macs": 0, "flops": 0, "activation_bytes": 400, "param_bytes": 0,
            "trainable_params": 0, "counted": True, "saved_bytes": 0,
            "roofline": {"bytes": 500, "intensity": 0, "bound": None, "seconds": None},
            "receptive_field": {"size": [5, 5], "jump": ["1/2", "1/2"], "padding": [2, 2], "center": [0, 0],
                                "varies": [True, True]},
            "notes": ["receptive fields differ between output positions (size or placement); the largest size is reported"],
        },
    ],
    "output_shape": [1, 10, 10],
    "totals": {"params": 20, "macs": 162, "flops": 358, "training_macs": 405, "activation_bytes": 536,
               "param_bytes": 80, "trainable_params": 20, "uncounted_layers": 0, "unused_params": 0,
               "peak_activation_bytes": 500, "peak_layer": 3,
               "training_bytes": 456,
               "training": {"optimizer": "adam", "parameter_bytes": 80, "gradient_bytes": 80, "optimizer_bytes": 160,
                            "saved_bytes": 136, "exact": True},
               "roofline": None},
}


def test_json_golden():
    result = invoke("shape", "1x5x5", "conv:1,k=3,s=2,p=1", "convT:1,k=3,s=2,p=1", "up:2", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == GOLDEN
    assert result.stderr == ""


def test_json_integers_are_plain_ints():
    data = json.loads(invoke("shape", "3x224x224", "conv:64,k=7,s=2,p=3", "--json", "--batch", "256").stdout)
    assert type(data["totals"]["macs"]) is int
    assert data["totals"]["macs"] == 256 * 118_013_952
    assert data["batch"] == 256


def test_plain_table_when_not_a_terminal():
    result = invoke("shape", "3x224x224", "conv:64,k=7,s=2,p=3,bias=false", "bn", "relu", "maxpool:k=3,s=2,p=1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "name", "layer", "output", "params", "MACs", "FLOPs", "RF", "jump"]
    assert lines[2].split()[:5] == ["1", "1", "Conv2d", "3→64", "k=7"]  # tokens are named by their index
    assert "64x112x112" in lines[2] and "9.41 K" in lines[2] and "118 M" in lines[2]
    assert lines[5].split()[-2:] == ["11", "4"]  # the ResNet stem's receptive field
    assert lines[6].split()[:4] == ["total", "64x56x56", "9.54", "K"]
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe


def test_rich_table_on_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from convcalc import analyse_tokens
    from convcalc.output.render import render_rich
    from convcalc.output.reports import shape_table

    buffer = io.StringIO()
    render_rich(shape_table(analyse_tokens("3x32x32", "conv:16,k=3,p=1")), Console(file=buffer, width=120, no_color=True))
    text = buffer.getvalue()
    assert "Conv2d 3→16 k=3 p=1" in text and "16x32x32" in text and "total" in text


def test_constructor_token():
    result = invoke(
        "shape", "3x224x224", "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)", "--json"
    )
    assert json.loads(result.stdout)["layers"][0]["params"] == 9408


def test_error_points_at_the_token_and_says_how_to_fix():
    result = invoke("shape", "3x224x224", "conv:64,k=3,p=1", "conv:64,k=3,s=2,p=same")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: layer 2 'conv:64,k=3,s=2,p=same': padding='same' needs stride 1 (got stride 2)"
    assert lines[1].index("^") == lines[0].index("p=same") and lines[1].count("^") == len("p=same")
    assert lines[2].startswith("hint: give an explicit padding")
    assert result.stdout == ""


def test_error_with_json_also_on_stdout():
    result = invoke("shape", "3x224x224", "conv:64,k=3,g=5", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["layer"] == 1 and error["field"] == "groups" and "does not divide" in error["message"]
    assert error["token"] == "conv:64,k=3,g=5" and error["span"] == [12, 15]


@pytest.mark.parametrize(
    "args, message",
    [
        (["shape", "3x224xabc", "relu"], "'abc' is not a positive size"),
        (["shape", "3x224x224", "cnv:64"], "unknown layer kind 'cnv'"),
        (["shape", "3x224x224", "conv:64,k=3,stride=0"], "stride must be positive"),
        (["shape", "3x224x224", "conv:64,kk=3"], "conv has no argument 'kk'"),
        (["shape", "3x224x224", "conv:64"], "conv needs kernel_size"),
        (["shape", "3x224x224", "Conv2d(3, 64, kernel_size=__import__('os'))"], "is not a literal value"),
        (["shape", "3x4x4", "conv:8,k=5"], "larger than the padded input"),
        (["shape", "3x8x8", "conv:8,k=3,p=8,padding_mode=reflect"], "reflect padding must be smaller"),
        (["shape", "3x8x8", "--batch", "0", "relu"], "--batch must be a positive integer"),
        (["shape"], "missing the input shape"),
        (["shape", "-f", "/nonexistent.json"], "cannot read '/nonexistent.json'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_file_and_stdin_documents():
    from_file = invoke("shape", "-f", str(DATA / "stem.json"), "--json")
    from_stdin = invoke("shape", "-f", "-", "--json", input=(DATA / "stem.json").read_text())
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert json.loads(from_file.stdout) == json.loads(from_stdin.stdout)
    data = json.loads(from_file.stdout)
    assert data["output_shape"] == [64, 56, 56] and data["totals"]["params"] == 9408 + 128


def test_batch_option_overrides_the_document():
    data = json.loads(invoke("shape", "-f", str(DATA / "stem.json"), "--json", "--batch", "4").stdout)
    assert data["batch"] == 4 and data["layers"][0]["macs"] == 4 * 118_013_952


def test_unknown_document_key_is_an_error():
    document = {"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3, "strides": 2}]}
    result = invoke("shape", "-f", "-", input=json.dumps(document))
    assert result.exit_code == 2
    assert "layer 1 (layers[0])" in result.stderr and "conv has no argument 'strides'" in result.stderr


def test_malformed_json_document():
    result = invoke("shape", "-f", "-", input='{"input": [3, 8, 8], "layers": [}')
    assert result.exit_code == 2 and "invalid JSON at line 1" in result.stderr


def test_stream_keeps_going_past_bad_lines():
    good = json.dumps({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3}]})
    bad_layer = json.dumps({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 9}]})
    lines = [good, "{not json", "", bad_layer, good]
    result = invoke("shape", "--stream", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5  # one line out per line in: the blank line is an empty document
    assert out[0]["output_shape"] == [4, 6, 6] and out[4] == out[0]
    assert out[1]["error"]["line"] == 2 and "invalid JSON" in out[1]["error"]["message"]
    assert out[2]["error"]["line"] == 3 and "the document is empty" in out[2]["error"]["message"]
    assert out[3]["error"]["line"] == 4 and out[3]["error"]["layer"] == 1
    assert out[3]["error"]["field"] == "kernel_size"


def test_stream_all_good_exits_0(tmp_path):
    path = tmp_path / "sweep.ndjson"
    docs = [{"input": [3, n, n], "layers": [{"type": "maxpool", "kernel_size": 2}]} for n in (4, 6, 8)]
    path.write_text("\n".join(json.dumps(d) for d in docs))
    result = invoke("shape", "--stream", str(path))
    assert result.exit_code == 0
    assert [json.loads(line)["output_shape"] for line in result.stdout.splitlines()] == [[3, 2, 2], [3, 3, 3], [3, 4, 4]]


def test_dtype_sets_memory():
    data = json.loads(invoke("shape", "4x8x8", "conv:8,k=1", "--dtype", "float16", "--json").stdout)
    assert data["layers"][0]["activation_bytes"] == 8 * 8 * 8 * 2 and data["layers"][0]["param_bytes"] == 40 * 2


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "convcalc", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("convcalc ")


def test_help_shows_examples():
    result = invoke("shape", "--help")
    assert result.exit_code == 0 and "conv:64,k=7,s=2,p=3" in result.stdout


def test_core_imports_neither_typer_nor_rich_and_shape_never_numpy():
    code = (
        "import sys, convcalc\n"
        "assert not {'typer', 'rich', 'numpy'} & set(sys.modules), sorted({'typer', 'rich', 'numpy'} & set(sys.modules))\n"
        "from typer.testing import CliRunner\n"
        "from convcalc.cli import app\n"
        "r = CliRunner().invoke(app, ['shape', '3x8x8', 'conv:4,k=3', 'relu', '--json'])\n"
        "assert r.exit_code == 0\n"
        "assert 'numpy' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("limit", [".", "..", "lots", "1e9", "-1"])
def test_a_memory_limit_that_is_not_a_size_is_one_error_line(limit):
    result = invoke("run", "3x8x8", "conv:4,k=3", "--memory-limit", limit)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0].endswith(f"--memory-limit {limit!r} is not a size")
