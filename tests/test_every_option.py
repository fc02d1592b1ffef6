"""Every analysis option over every preset and a captured model, in every format: --optimizer (each),
--device (each, and measured by hand with --peak/--bandwidth), --chart, with --depth as tests/test_depth.py
loops it. Each combination is a result (exit 0) whose JSON says what was asked, never a traceback.
Options and presets added later are looped over without editing this file."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.engine.devices import DEVICES
from convcalc.engine.memory import OPTIMIZERS
from convcalc.output.formats import OutputFormat

runner = CliRunner()
PRESETS = [p["name"] for p in json.loads(runner.invoke(app, ["presets", "--json"]).stdout)["presets"]]


def _ok(*args) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stderr, result.exception)
    assert result.stdout.strip(), args
    return result.stdout


def _loop(source: list[str]) -> None:
    for optimizer in OPTIMIZERS:
        for output in OutputFormat:
            _ok("shape", *source, "--optimizer", optimizer, "--format", output.value)
        data = json.loads(_ok("shape", *source, "--optimizer", optimizer, "--json"))
        assert data["totals"]["training"]["optimizer"] == optimizer
    for device, figures in DEVICES.items():
        dtype = "float32" if "float32" in figures.peak else next(iter(figures.peak))  # one it publishes
        data = json.loads(_ok("shape", *source, "--device", device, "--dtype", dtype, "--json"))
        assert data["totals"]["roofline"]["device"] == device
        _ok("shape", *source, "--device", device, "--dtype", dtype)
    data = json.loads(_ok("shape", *source, "--peak", "10T", "--bandwidth", "500GB/s", "--json"))
    assert data["totals"]["roofline"]["peak_flops"] == 10**13
    for output in OutputFormat:
        _ok("shape", *source, "--device", "t4", "--chart", "--format", output.value)
        _ok("shape", *source, "--device", "t4", "--chart", "--depth", "1", "--optimizer", "sgd",
            "--format", output.value)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_option_on_every_preset(preset):
    _loop(["--preset", preset])


MODEL = textwrap.dedent('''
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                            torch.nn.ReLU())
            self.head = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.head(self.stem(x).mean((2, 3)))
''')


@pytest.mark.needs_torch
def test_every_option_on_a_captured_model(tmp_path, monkeypatch):
    (tmp_path / "option_loop_model.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _loop(["--model", "option_loop_model:Net", "3x16x16"])
    finally:
        sys.modules.pop("option_loop_model", None)
