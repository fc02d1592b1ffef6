"""convcalc.summary() in a real notebook: a notebook written with nbformat, run by nbclient on the
python3 Jupyter kernel, its last cell's rich output read back. The figures it must show are
computed here with torch, not by convcalc."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.needs_nbclient, pytest.mark.needs_torch]

MODEL = """\
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential()
model.add_module("stem", nn.Conv2d(3, 16, 3, padding=1))
model.add_module("act", nn.ReLU())
model.add_module("pool", nn.MaxPool2d(2))
model.add_module("body", nn.Conv2d(16, 32, 3, padding=1, bias=False))
model.add_module("norm", nn.BatchNorm2d(32))
model.add_module("gap", nn.AdaptiveAvgPool2d(1))
model.add_module("flat", nn.Flatten())
model.add_module("head", nn.Linear(32, 10))
"""
NAMES = ["stem", "act", "pool", "body", "norm", "gap", "flat", "head"]


def _expected():
    """The model's parameters and half of FlopCounterMode's FLOPs, computed here."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    space: dict = {}
    exec(MODEL, space)  # the notebook's own cell, built in this process too
    model = space["model"].eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def test_the_last_expression_shows_an_html_table(tmp_path):
    nbformat = pytest.importorskip("nbformat")  # the marker asks for the kernel; these run it
    NotebookClient = pytest.importorskip("nbclient").NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import convcalc"),
        nbformat.v4.new_code_cell(MODEL),
        nbformat.v4.new_code_cell("convcalc.summary(model, (1, 3, 32, 32))"),
    ]
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = notebook.cells[-1].outputs
    assert [o["output_type"] for o in outputs] == ["execute_result"], outputs
    data = outputs[0]["data"]
    page = data["text/html"]
    for name in NAMES:
        assert f">{name}</td>" in page
    params, macs = _expected()
    assert f">{params:,}</th>" in page and f">{macs:,}</th>" in page  # the totals row
    assert data["text/plain"] == (f"<Summary of Sequential: input 1x3x32x32 float32, {params:,} params, "
                                  f"{macs:,} MACs>")
    assert "<script" not in page
