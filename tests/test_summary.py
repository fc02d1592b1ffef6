"""convcalc.summary(): a PyTorch module's figures against PyTorch (parameters counted, FlopCounterMode's
products) and torchinfo; every other source against what the command line prints for it (the table,
and --json); the HTML parsed, every name in it escaped; the DataFrame, the errors, dir(convcalc),
the public docstrings and the examples of docs/python.md."""

from __future__ import annotations

import doctest
import io
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import convcalc
from convcalc.cli import app
from convcalc.engine.errors import ConvcalcError, SpecError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def cli(*args) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def small_cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def torch_macs(model, *shape) -> int:
    """Half of FlopCounterMode's count: the products of PyTorch's own convolutions and matmuls."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(*shape))
    return counter.get_total_flops() // 2


# --- a PyTorch module, against PyTorch and torchinfo ------------------------------------------------------


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
def test_a_module_against_pytorch(batch):
    import torch

    model = small_cnn()
    s = convcalc.summary(model, (batch, 3, 32, 32))
    assert s.totals.params == sum(p.numel() for p in model.parameters())
    assert s.totals.macs == torch_macs(model, batch, 3, 32, 32)
    assert s.output_shape == tuple(model(torch.zeros(batch, 3, 32, 32)).shape[1:])
    assert s.analysis.network.batch == batch
    # input_data: its shape and dtype (the capture itself traces in float32)
    data = convcalc.summary(model, input_data=torch.zeros(batch, 3, 32, 32, dtype=torch.float16))
    assert (data.analysis.network.dtype, data.analysis.network.batch) == ("float16", batch)
    assert data.totals.param_bytes == sum(p.numel() * 2 for p in model.parameters())
    # torch.Size and NumPy sizes, and a list of one input's sizes, are input sizes too
    import numpy

    for size in (torch.Size([batch, 3, 32, 32]), numpy.array([batch, 3, 32, 32]), [[batch, 3, 32, 32]]):
        assert convcalc.summary(model, size).to_dict() == s.to_dict()


def _torchinfo_products(model, size):
    """torchinfo's mult-adds of each Conv and Linear layer, less what it counts for their biases (one
    multiply-add per bias value and output position): what convcalc calls a layer's MACs."""
    import torchinfo

    stats = torchinfo.summary(model, input_size=size, verbose=0)
    products = []
    for layer in stats.summary_list:
        if layer.class_name.startswith("Conv") or layer.class_name == "Linear":
            bias = layer.module.bias
            out = layer.output_size
            positions = math.prod(out[:1] + out[2:]) if layer.class_name.startswith("Conv") else out[0]
            products.append(layer.macs - (0 if bias is None else bias.numel() * positions))
    return stats, products


@pytest.mark.needs_torch
@pytest.mark.needs_torchinfo
@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_torchinfo_agrees_on_parameters_and_products(name):
    from .torchvision_models import build

    model = small_cnn() if name == "small_cnn" else build("resnet18")
    size = (2, 3, 64, 64) if name == "small_cnn" else (1, 3, 224, 224)
    stats, products = _torchinfo_products(model, size)
    s = convcalc.summary(model, size)
    assert s.totals.params == stats.total_params
    assert s.totals.trainable_params == stats.trainable_params
    ours = [r.macs for r in s.layers if r.type.startswith("Conv") or r.type == "Linear"]
    assert ours == products
    # where every product is a convolution's or a linear layer's, the totals are the same
    assert s.totals.macs == sum(products)


# --- every source, against the command line ----------------------------------------------------------


def _onnx_file(tmp_path) -> Path:
    import torch

    path = tmp_path / "small.onnx"
    torch.onnx.export(small_cnn().eval(), (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17)
    return path


DOCUMENT = {"input": [3, 32, 32], "layers": [{"type": "conv", "out_channels": 8, "kernel_size": 3, "name": "stem"},
                                             {"type": "relu"}, {"type": "maxpool", "kernel_size": 2}]}


def _sources(tmp_path):
    """(what summary() is given, its keyword arguments, the command line's arguments for the same)."""
    doc = tmp_path / "net.json"
    doc.write_text(json.dumps(DOCUMENT))
    yaml_path = tmp_path / "net.yaml"
    yaml_path.write_text("input: [3, 16, 16]\nlayers:\n  - {type: conv, out_channels: 4, kernel_size: 3}\n"
                         "  - {type: bn}\n  - {type: relu, name: last}\n")
    return [
        (["conv:16,k=3,p=1", "relu", "maxpool:2"], {"input_size": "3x32x32"}, ["3x32x32", "conv:16,k=3,p=1", "relu",
                                                                                "maxpool:2"]),
        (["conv:16,k=3,p=1", "bn"], {"input_size": (4, 3, 8, 8)}, ["3x8x8", "conv:16,k=3,p=1", "bn", "--batch", "4"]),
        ("resnet18", {}, ["--preset", "resnet18"]),
        ("unet", {"input_size": "3x64x64", "batch": 2, "dtype": "float16"},
         ["--preset", "unet", "3x64x64", "--batch", "2", "--dtype", "float16"]),
        (str(doc), {}, ["-f", str(doc)]),
        (doc, {"batch": 3}, ["-f", str(doc), "--batch", "3"]),
        (DOCUMENT, {}, ["-f", str(doc)]),
        (doc.read_text(), {}, ["-f", str(doc)]),
        (yaml_path, {"optimizer": "sgd"}, ["-f", str(yaml_path), "--optimizer", "sgd"]),
        (yaml_path.read_bytes(), {"device": "a100-80gb"}, ["-f", str(yaml_path), "--device", "a100-80gb"]),
    ]


@pytest.mark.parametrize("position", range(10))
def test_to_dict_is_what_json_prints(tmp_path, position):
    source, options, args = _sources(tmp_path)[position]
    s = convcalc.summary(source, **options)
    assert s.to_dict() == json.loads(cli("shape", *args, "--json"))


@pytest.mark.parametrize("position", range(10))
def test_str_is_the_table_shape_prints(tmp_path, position):
    source, options, args = _sources(tmp_path)[position]
    text = str(convcalc.summary(source, **options))
    assert text + "\n" == cli("shape", *args)
    assert "\x1b" not in text


@pytest.mark.needs_torch
@pytest.mark.needs_onnx
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, which keeps the names
def test_an_onnx_model_by_path_and_bytes(tmp_path):
    import onnx

    path = _onnx_file(tmp_path)
    printed = json.loads(cli("shape", "-f", str(path), "--json"))
    stored = sum(math.prod(t.dims) for t in onnx.load(str(path)).graph.initializer)  # batch norm folded in
    for source in (path, str(path), path.read_bytes()):
        s = convcalc.summary(source)
        assert s.to_dict() == printed
        assert s.totals.params == stored
        assert s.totals.macs == torch_macs(small_cnn(), 1, 3, 32, 32)
    assert repr(convcalc.summary(path.read_bytes())).startswith("<Summary of ONNX model: input 1x3x32x32")


MODEL = """
import torch
from torch import nn


def small_cnn():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
"""


@pytest.mark.needs_torch
def test_a_module_is_what_model_prints(tmp_path, monkeypatch):
    (tmp_path / "summary_model.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        s = convcalc.summary(small_cnn(), (1, 3, 32, 32), depth=1)
        printed = cli("shape", "--model", "summary_model:small_cnn", "3x32x32", "--depth", "1")
        assert str(s) + "\n" == printed
        named = convcalc.summary("summary_model:small_cnn", "3x32x32")
        assert named.to_dict() == s.to_dict() == json.loads(cli("shape", "--model", "summary_model:small_cnn",
                                                                "3x32x32", "--json"))
    finally:
        sys.modules.pop("summary_model", None)


def test_depth_folds_as_the_option_does():
    s = convcalc.summary("resnet18", depth=1)
    assert str(s) + "\n" == cli("shape", "--preset", "resnet18", "--depth", "1")
    assert len(s.layers) == len(convcalc.summary("resnet18").layers)  # the reports are every layer's still


# --- how it shows -----------------------------------------------------------------------------------


def test_repr_is_one_short_line():
    s = convcalc.summary("resnet18", batch=4)
    assert repr(s) == "<Summary of resnet18: input 4x3x224x224 float32, 11,689,512 params, 7,256,293,376 MACs>"
    assert s.totals.macs == 4 * 1_814_073_344  # torchvision's resnet18 at 224x224: 1.81 G mult-adds a sample


def test_rich_draws_the_table():
    from rich.console import Console

    s = convcalc.summary(["conv:16,k=3,p=1", "relu"], "3x32x32")
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(s)
    drawn = console.export_text()
    for r in s.layers:
        assert f"{r.type} {r.summary}".strip() in drawn
    assert "total" in drawn and "448" in drawn
    narrow = Console(file=io.StringIO(), width=50, record=True)
    narrow.print(s)
    assert max(map(len, narrow.export_text().splitlines())) <= 50


class _Cells(HTMLParser):
    """The text of every cell, and every tag opened."""

    def __init__(self):
        super().__init__()
        self.cells, self.tags, self.text, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data


def parsed(page: str) -> _Cells:
    parser = _Cells()
    parser.feed(page)
    parser.close()
    return parser


def test_html_holds_every_layer_and_the_totals():
    s = convcalc.summary("resnet18", optimizer="sgd")
    page = parsed(s._repr_html_())
    assert page.tags.count("table") == 1 and "script" not in page.tags and "style" not in page.tags
    for r in s.layers:
        assert (r.name or "") in page.cells and r.type in page.cells and f"{r.params:,}" in page.cells
    assert len([r for r in s.layers if r.name]) > 50  # the preset names its convolutions and norms
    totals = s.totals
    assert {f"{totals.params:,}", f"{totals.macs:,}", f"{totals.flops:,}"} <= set(page.cells)
    text = " ".join(page.text)
    assert "inference: peak activations" in text and "training (sgd)" in text


def test_html_folds_by_depth_as_the_table_does():
    s = convcalc.summary("resnet18", depth=1)
    page = parsed(s._repr_html_())
    printed = cli("shape", "--preset", "resnet18", "--depth", "1").splitlines()
    rows = [line for line in printed if line.lstrip()[:1].isdigit()]  # the input's row and each layer's or block's
    assert page.tags.count("tr") == 1 + len(rows) + 1  # the header, the rows, the total
    for block in ("layer1.0", "layer4.1"):
        assert block in " ".join(page.cells)
    assert {f"{s.totals.params:,}", f"{s.totals.macs:,}"} <= set(page.cells)
    assert "73,984" in page.cells  # layer1.0: two 64->64 3x3 convolutions and two batch norms: 2 * (36,864 + 128)


def test_html_escapes_every_name():
    hostile = {"input": [3, 8, 8], "layers": [
        {"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "<script>alert(1)</script>"},
        {"type": "relu", "name": "a&b\x1b[2J\"'"}]}
    page = convcalc.summary(hostile)._repr_html_()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    cells = parsed(page)
    assert "script" not in cells.tags
    assert "<script>alert(1)</script>" in cells.cells
    assert "a&b\\x1b[2J\"'" in cells.cells  # the escape code shown, not sent


@pytest.mark.needs_pandas
def test_to_dataframe_has_a_row_per_layer():
    s = convcalc.summary("resnet18")
    frame = s.to_dataframe()
    assert len(frame) == len(s.layers)
    assert [n if isinstance(n, str) else None for n in frame["name"]] == [r.name for r in s.layers]
    assert int(frame["params"].sum()) == s.totals.params and int(frame["macs"].sum()) == s.totals.macs


def test_to_dataframe_without_pandas_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas then fails
    with pytest.raises(SpecError, match="needs pandas") as err:
        convcalc.summary(["relu"], "3x8x8").to_dataframe()
    assert "pip install pandas" in err.value.hint and "\n" not in str(err.value)


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.needs_torch
@pytest.mark.parametrize(("size", "message"), [
    ((3, 32, 32), r"input_size \(3, 32, 32\) has 3 dimensions; the model's first layer, Conv2d, takes 4"),
    ((32,), r"has 1 dimension: it includes the batch"),
    ([(1, 3, 32, 32), (1, 10)], "gives 2 inputs: convcalc reads models of one input"),
    ((1, 3, 0, 32), "must be positive integers"),
    ((1, 3, 32.0, 32), "must be positive integers"),
    ((1, True, 32, 32), "must be positive integers"),
    (None, "a PyTorch model carries no input size"),
    ("3x32", "3x32"),
])
def test_a_module_with_a_wrong_input_size(size, message):
    with pytest.raises(ConvcalcError, match=message) as err:
        convcalc.summary(small_cnn(), size)
    assert "\n" not in str(err.value)


@pytest.mark.needs_torch
def test_wrong_arguments_are_one_line_errors():
    import torch

    model = small_cnn()
    cases = [
        (lambda: convcalc.summary(model, (1, 3, 8, 8), input_data=torch.zeros(1, 3, 8, 8)), "not both"),
        (lambda: convcalc.summary(model, (2, 3, 8, 8), batch=3), "batch of 2 and batch is 3"),
        (lambda: convcalc.summary(model, input_data=[torch.zeros(1, 3, 8, 8)] * 2), "gives 2 inputs"),
        (lambda: convcalc.summary(model, (1, 3, 8, 8), device="cuda"), "convcalc never runs the model"),
        (lambda: convcalc.summary(model, (1, 3, 8, 8), device=torch.device("cpu")), "never runs"),
        (lambda: convcalc.summary(torch.nn.Linear, (1, 3)), "model instance, not the class 'Linear'"),
        (lambda: convcalc.summary(model, torch.zeros(1, 3, 8, 8)), "input_size is a tensor"),
        (lambda: convcalc.summary(model, (1, 3, 8, 8), dtype="float8"), "unknown dtype 'float8'"),
        (lambda: convcalc.summary(model, (1, 3, 8, 8), optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
        (lambda: convcalc.summary(model, (1, 3, 8, 8), depth=-1), "depth must be 0 or more"),
    ]
    for call, message in cases:
        with pytest.raises(ConvcalcError, match=message) as err:
            call()
        assert "\n" not in str(err.value) and err.value.hint


@pytest.mark.parametrize(("source", "options", "message"), [
    (42, {}, "summary\\(\\) cannot read a int"),
    (["conv:8,k=3"], {}, "layer tokens carry no input shape"),
    (["conv:8,k=3"], {"input_size": "3x8x8", "batch": 0}, "batch must be a positive integer"),
    ("no-such-file.onnx", {}, "cannot read 'no-such-file.onnx'"),
    ("resnet19", {}, "unknown preset 'resnet19'"),
    ("nets/no_such_net", {}, "cannot read 'nets/no_such_net'"),
    ('{"input": [3, 8, 8], "layers": [{"type": "nope/1"}]}', {}, "nope/1"),
    ({"input": [3, 8, 8], "layers": [{"type": "relu", "x": object()}]}, {}, "not plain data"),
    (["relu"], {"input_data": [1, 2]}, "input_data goes with a PyTorch module"),
    (["relu"], {"device": "no-such-gpu"}, "unknown device"),
])
def test_bad_sources_are_one_line_errors(source, options, message):
    with pytest.raises(ConvcalcError, match=message) as err:
        convcalc.summary(source, **options)
    assert "\n" not in str(err.value) and "--" not in (err.value.hint or "")  # no option of the command line


def test_a_device_of_ones_own():
    device = convcalc.Device("mine", {"float32": 10**12}, 10**11, "a test")
    s = convcalc.summary(["conv:16,k=3,p=1"], "3x32x32", device=device)
    assert s.to_dict()["totals"]["roofline"]["device"] == "mine"
    # the bound of one layer: the larger of its FLOPs over the peak and its bytes over the bandwidth
    layer = s.to_dict()["layers"][0]
    assert layer["roofline"]["seconds"] == max(layer["flops"] / 10**12, layer["roofline"]["bytes"] / 10**11)


def test_a_model_by_name_without_torch_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch then fails, as where it is not installed
    with pytest.raises(SpecError, match="needs PyTorch, which is not installed") as err:
        convcalc.summary("torchvision.models:resnet18", (1, 3, 224, 224))
    assert "pip install torch" in err.value.hint


def test_summary_leaves_typer_and_rich_out():
    """The core path imports neither: only drawing on a Rich console loads Rich."""
    code = ("import convcalc, sys; s = convcalc.summary(['conv:4,k=3', 'relu'], '3x8x8'); str(s); repr(s); "
            "s.to_dict(); s._repr_html_(); print('typer' in sys.modules, 'rich' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# --- the public API ---------------------------------------------------------------------------------

# Public names whose docstrings had no example when summary() was added: their modules belong to
# other parts of the project. A new public name comes with its example.
WITHOUT_EXAMPLES = {"Device", "from_onnx"}


def test_dir_shows_the_public_api():
    listed = dir(convcalc)
    assert set(convcalc.__all__) <= set(listed)
    assert {"summary", "Summary", "analyse", "from_torch", "__version__"} <= set(listed)
    assert listed == sorted(listed)


@pytest.mark.parametrize("name", sorted(set(convcalc.__all__) - {"__version__"}))
def test_every_public_name_has_a_docstring(name):
    doc = getattr(convcalc, name).__doc__ or ""
    assert doc.strip(), f"convcalc.{name} has no docstring"
    if name not in WITHOUT_EXAMPLES:
        assert ">>>" in doc, f"convcalc.{name}'s docstring has no example"


@pytest.mark.needs_torch
@pytest.mark.needs_onnx
@pytest.mark.needs_pandas
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the page exports ONNX with the TorchScript exporter
def test_the_python_page_examples_run():
    """docs/python.md's ```python blocks, run as doctests (the README's run through pytest's glob)."""
    page = ROOT / "docs" / "python.md"
    failures, tried = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS
                                       | doctest.NORMALIZE_WHITESPACE, verbose=False, report=True)
    assert tried > 10 and failures == 0
