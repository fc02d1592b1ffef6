"""Every example in the README and on every page of docs/ runs, so the documentation cannot drift.

What runs, page by page (docs/contributing.md says the same to writers):

- a line starting ``convcalc `` in a code block (no language, bash, console, sh, shell) runs and
  succeeds; inline code in the prose that is a whole command (``convcalc solve ...``) too;
- a block written as a session, ``$ convcalc ...`` followed by what it prints, prints exactly that
  (stdout and stderr, as a terminal shows them; nothing shown: it must succeed);
- ``>>>`` examples run as doctests, page by page, and other ``python`` blocks run as scripts;
- a ``json`` or ``yaml`` block that is a network document (``input`` and ``layers``) is analysed.

Placeholders (a word in capitals such as INPUT, FILE, LAYER, NAME, ``[...]``, ``...``) and lines
with a pipe or ``<`` are syntax, not run; ``cmd > file`` runs ``cmd``. The commands run in a
directory holding small files of the names the pages use (model.onnx, my_net.py, model.txt, ...).
A block whose language is ``text`` is shown, not run. The ``terminal`` captures are re-made by
tests/test_terminal.py.
"""

from __future__ import annotations

import doctest
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
GENERATED = {DOCS / "cli.md", DOCS / "kinds.md"}  # written from the program: they document nothing by themselves
SHELL = {"", "bash", "console", "sh", "shell"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]+[A-Z]\b|\.\.\.|\[|[|<]")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    info: str
    text: str


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page (indented fences too, as in admonitions)."""
    found, lines = [], page.read_text().split("\n")
    i = 0
    while i < len(lines):
        match = re.match(r"( *)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if match:
            indent, fence, info = match.groups()
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            found.append(Block(page, i + 1, info, "\n".join(body)))
            i = j
        i += 1
    return found


def prose(page: Path) -> str:
    """A page without its code blocks."""
    return re.sub(r"^( *)(```+|~~~+).*?^\1\2[ \t]*$", "", page.read_text(), flags=re.S | re.M)


def _runnable(command: str) -> str | None:
    """The command to run for a documented line, or None when the line is syntax, not a command."""
    command = command.split("  #")[0].strip()
    if " > " in command:
        command = command.split(" > ")[0].strip()
    if PLACEHOLDER.search(command.replace("NO_COLOR", "")) or not command.startswith("convcalc "):
        return None
    return command


@dataclass(frozen=True)
class Example:
    where: str
    command: str
    shown: str | None  # what a session block shows it printing; None: it must succeed


def examples() -> list[Example]:
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.info not in SHELL:
                continue
            lines = block.text.split("\n")
            if any(line.startswith("$ ") for line in lines):
                i = 0
                while i < len(lines):
                    if lines[i].startswith("$ "):
                        j = i + 1
                        while j < len(lines) and not lines[j].startswith("$ "):
                            j += 1
                        command, shown = _runnable(lines[i][2:]), "\n".join(lines[i + 1:j])
                        if command:
                            found.append(Example(f"{_name(page)}:{block.line + 1 + i}", command,
                                                 shown + "\n" if shown.strip() else None))
                        i = j
                    else:
                        i += 1
            else:
                for i, line in enumerate(lines):
                    if command := _runnable(line):
                        found.append(Example(f"{_name(page)}:{block.line + 1 + i}", command, None))
        for span in re.findall(r"`(convcalc [^`]+)`", prose(page)):
            command = _runnable(" ".join(span.split()))
            if command and len(command.split()) >= 4:  # a whole command, not `convcalc shape -f`
                found.append(Example(f"{_name(page)} (inline)", command, None))
    return found


EXAMPLES = examples()


def _marks(text: str) -> list:
    marks = []
    if ".onnx" in text:
        marks.append(pytest.mark.needs_onnx)
    if "--model" in text or re.search(r"\b(import torch|import torchvision|from_torch|import convcalc, torchvision)", text):
        marks.append(pytest.mark.needs_torch)
    return marks


# Small files of the names the pages use, made where the examples run.
_NET = {"input": [3, 224, 224], "layers": [
    {"type": "Conv2d", "out_channels": 64, "kernel_size": 7, "stride": 2, "padding": 3, "bias": False},
    {"type": "BatchNorm2d"}, {"type": "relu"}, {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}]}
_PRINTED = """Sequential(
  (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (1): ReLU(inplace=True)
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
)
"""
_MY_NET = '''import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
'''


def _onnx_files(where: Path) -> None:
    """model.onnx (a symbolic batch), dynamic.onnx (symbolic height and width) and broken.onnx (stride 0)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def model(shape, *, strides=(1, 1)):
        weights = [numpy_helper.from_array(np.full((8, 3, 3, 3), 0.1, np.float32), "w"),
                   numpy_helper.from_array(np.zeros(8, np.float32), "b"),
                   numpy_helper.from_array(np.full((10, 8), 0.1, np.float32), "fc.w"),
                   numpy_helper.from_array(np.zeros(10, np.float32), "fc.b")]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                  strides=list(strides)),
                 helper.make_node("Relu", ["c"], ["r"], name="/features/relu/Relu"),
                 helper.make_node("GlobalAveragePool", ["r"], ["g"], name="/features/pool/GlobalAveragePool"),
                 helper.make_node("Flatten", ["g"], ["f"], name="/flatten/Flatten", axis=1),
                 helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="/fc/Gemm", transB=1)]
        graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    (where / "model.onnx").write_bytes(model(["N", 3, 32, 32]))
    (where / "dynamic.onnx").write_bytes(model([1, 3, "H", "W"]))
    (where / "broken.onnx").write_bytes(model([1, 3, 32, 32], strides=(0, 0)))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory with the files the pages' examples name, made the working directory."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "net.json").write_text(json.dumps(_NET))
    (tmp_path / "net.yaml").write_text(json.dumps(_NET))  # JSON is YAML
    (tmp_path / "sweep.ndjson").write_text(json.dumps(_NET) + "\n" + json.dumps({**_NET, "input": [3, 64, 64]}) + "\n")
    (tmp_path / "model.txt").write_text(_PRINTED)
    (tmp_path / "my_net.py").write_text(_MY_NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _invoke(command: str):
    words = shlex.split(command)
    assert words[0] == "convcalc"
    return CliRunner().invoke(app, words[1:])


@pytest.mark.parametrize("example", [pytest.param(e, id=f"{e.where} {e.command}"[:120], marks=_marks(e.command))
                                     for e in EXAMPLES])
def test_every_command_on_every_page_runs(example, workdir):
    if ".onnx" in example.command:
        _onnx_files(workdir)
    if "torchvision" in example.command:
        from .torchvision_models import torchvision

        torchvision()  # importable without its compiled operators
    words = shlex.split(example.command)
    if words[1] == "draw" and shutil.which("dot") is None and not any(
            w.endswith((".html", ".dot", ".mmd")) or w in ("dot", "mermaid", "html") for w in words):
        pytest.skip("drawing SVG or PNG needs Graphviz's dot, which is not installed here")
    result = _invoke(example.command)
    if example.shown is None:
        assert result.exit_code == 0, (example.where, result.stderr)
    else:  # what a terminal shows: stdout and stderr as they were written
        assert result.output == example.shown, example.where


def test_the_pages_have_examples_of_each_kind():
    where = {e.where.split(":")[0].split(" ")[0] for e in EXAMPLES}
    assert {"README.md", "docs/tokens.md", "docs/onnx.md", "docs/model.md", "docs/solve.md"} <= where
    assert sum(e.shown is not None for e in EXAMPLES) >= 10


def _python_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.info in ("python", "py", "pycon")]


DOCTEST_PAGES = [p for p in PAGES if any(">>>" in b.text for b in _python_blocks(p))]
SCRIPTS = [b for p in PAGES for b in _python_blocks(p) if ">>>" not in b.text]


@pytest.mark.parametrize("page", [pytest.param(p, id=_name(p), marks=_marks(
    "\n".join(b.text for b in _python_blocks(p)))) for p in DOCTEST_PAGES])
def test_the_doctests_of_every_page(page, workdir):
    text = "\n\n".join(b.text + "\n" for b in _python_blocks(page) if ">>>" in b.text)
    if "torchvision" in text:
        from .torchvision_models import torchvision

        torchvision()
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "__main__"}, _name(page), str(page), 0)
    report: list[str] = []
    result = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(test, out=report.append)
    assert result.attempted and not result.failed, "".join(report)


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{_name(b.page)}:{b.line}", marks=_marks(b.text))
                                   for b in SCRIPTS])
def test_the_python_scripts_of_every_page(block, workdir):
    if "torchvision" in block.text:
        from .torchvision_models import torchvision

        torchvision()
    exec(compile(block.text, f"{_name(block.page)}:{block.line}", "exec"), {"__name__": "__main__"})


def _documents() -> list[Block]:
    import yaml

    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.info not in ("json", "yaml", "yml") or "--8<--" in block.text:
                continue
            try:
                data = yaml.safe_load(block.text)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and "input" in data and "layers" in data:
                found.append(block)
    return found


DOCUMENTS = _documents()


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{_name(b.page)}:{b.line}") for b in DOCUMENTS])
def test_every_network_document_shown_is_analysed(block):
    from convcalc import analyse, load_document

    assert analyse(load_document(block.text)).totals.params >= 0


def test_the_block_example_is_torchvisions_basic_block():
    from convcalc import analyse, load_document

    block = next(b for b in DOCUMENTS if b.page == DOCS / "documents.md" and "blocks:" in b.text)
    analysis = analyse(load_document(block.text))
    assert analysis.output_shape == (64, 224, 224)
    assert [r.name for r in analysis.layers if r.name][-1] == "layer1.1"


def test_the_json_example_is_what_the_program_prints():
    page = (DOCS / "json.md").read_text()
    example = re.search(r"For\n`(convcalc shape [^`]+)`[^\n]*\n[^\n]*\n\n```json\n(.*?)```", page, re.S)
    result = _invoke(example.group(1))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(example.group(2))


def test_every_schema_file_is_on_the_json_page():
    page = (DOCS / "json.md").read_text()
    for schema in sorted((ROOT / "convcalc" / "schemas").glob("*.json")):
        assert f'--8<-- "convcalc/schemas/{schema.name}"' in page, schema.name


def test_every_command_and_option_is_described_on_a_page():
    """Besides the generated reference: some page says what each command and option is for."""
    import typer.main

    text = "\n".join(p.read_text() for p in PAGES if p not in GENERATED)
    missing = []
    for name, command in typer.main.get_command(app).commands.items():
        if f"convcalc {name}" not in text:
            missing.append(f"convcalc {name}")
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{name} {option}")
    assert not missing, missing


def test_every_command_help_has_an_example():
    import typer.main

    for name in typer.main.get_command(app).commands:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0 and f"convcalc {name}" in result.stdout, name


def _generator(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_what_the_app_says():
    assert (DOCS / "cli.md").read_text() == _generator("gen_cli").render(), "run: python docs/gen_cli.py"


def test_the_kinds_reference_is_what_the_kinds_declare():
    assert (DOCS / "kinds.md").read_text() == _generator("gen_kinds").render(), "run: python docs/gen_kinds.py"


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return [page for item in nav for page in _nav_pages(item)]


def test_every_page_is_in_the_navigation_and_every_link_resolves():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(listed) == pages, set(listed) ^ set(pages)
    # the README's links to the pages (the site build checks the pages' own links)
    for target in re.findall(r"\]\((docs/[^)#]*)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target


def test_no_page_installs_a_published_release():
    """convcalc is not on PyPI: the pages install it from the clone (pip install . or ".[extra]")."""
    for page in PAGES:
        for line in page.read_text().splitlines():
            assert not re.search(r"pip install [\"']?convcalc\b", line), f"{_name(page)}: {line.strip()}"
