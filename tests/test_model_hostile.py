"""Hostile PyTorch models through the real command line: whatever a model's code does while it is
imported, built or captured (raises anything, exits, interrupts, prints, logs, returns odd things),
``convcalc shape --model`` answers with one error line naming the model and a hint, exit 2, and no
traceback; with ``--json`` its standard output stays one JSON error object; and nothing that torch
logs or warns reaches the user.

Each case runs the command line in a process of its own (so an exit, a print or a logger behaves as
it would for a user), on model modules written to a temporary folder: forked, for speed, from one
that has imported torch; a few cases also through ``python -m convcalc``, which must answer alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MODULES = {
    "nets.py": """
        import torch
        from torch import nn

        NUMBER = 3


        class Conv(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)

            def forward(self, x):
                return self.conv(x)


        instance = Conv()


        def factory(channels):
            return nn.Conv2d(3, channels, 3)


        def not_a_model():
            return 3


        class _Lookup:
            def __getattr__(self, name):
                raise RuntimeError(f"no {name} here")


        lookup = _Lookup()


        class GetattrRaises(Conv):
            def __getattr__(self, name):
                raise RuntimeError(f"attribute {name} refused")


        class PropertyRaises(Conv):
            @property
            def training(self):
                raise ValueError("training is not readable")

            @training.setter
            def training(self, value):
                pass


        property_raises = PropertyRaises()


        class Boom(BaseException):
            pass


        class Explodes(Conv):
            def forward(self, x):
                raise Boom("boom")


        class ExitsInForward(Conv):
            def forward(self, x):
                raise SystemExit(0)


        class Interrupts(Conv):
            def forward(self, x):
                raise KeyboardInterrupt


        class TwoInputs(nn.Module):
            def forward(self, x, y):
                return x + y


        class Branches(nn.Module):
            def forward(self, x):
                return x * 2 if x.sum() > 0 else x


        class Nonzero(nn.Module):
            def forward(self, x):
                return torch.nonzero(x).float()


        class Recurrent(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.LSTM(8, 16, batch_first=True)

            def forward(self, x):
                return self.rnn(x)[0]


        class ReturnsInput(nn.Module):
            def forward(self, x):
                return {"x": x}


        class DictOut(Conv):
            def __init__(self):
                super().__init__()
                self.aux = nn.Conv2d(3, 2, 1)

            def forward(self, x):
                return {"out": self.conv(x), "aux": self.aux(x)}


        class WithInput(Conv):
            def forward(self, x):
                return self.conv(x), x


        class Nested(Conv):
            def forward(self, x):
                return [x, {"a": (self.conv(x), 3)}, "text"]


        class Sorts(Conv):
            def forward(self, x):
                values, indices = torch.sort(self.conv(x), dim=1)
                return values * 2, indices.float()
    """,
    "syntax_error.py": "def f(:\n",
    "import_error.py": "import no_such_package_for_convcalc_tests\n",
    "raises_at_import.py": "raise ValueError('broken at import')\n",
    "exits_at_import.py": "import sys\nsys.exit(0)\n",
    "boom_at_import.py": "class Boom(BaseException):\n    pass\n\n\nraise Boom('at import')\n",
    "file_raises.py": "raise LookupError('in the file')\n",
    "prints.py": """
        import os
        import sys

        import torch

        print("printed at import")
        sys.__stdout__.write("written to sys.__stdout__\\n")
        sys.__stdout__.flush()
        os.write(1, b"written to descriptor 1\\n")


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)

            def forward(self, x):
                print("printed in forward")
                return self.conv(x)
    """,
    "logs.py": """
        import logging
        import warnings

        import torch

        logging.getLogger("torch").warning("torch logs at import")
        logging.getLogger("torch._dynamo").error("torch._dynamo logs at import")
        warnings.warn("a warning at import")


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn_like = torch.nn.Conv2d(3, 4, 3)

            def forward(self, x):
                logging.getLogger("torch.export").warning("torch.export logs in forward")
                warnings.warn("a warning in forward")
                return self.rnn_like(x)
    """,
}

# (id, arguments after `convcalc shape`, what the error line says)
FAILURES = [
    ("no such name", ["--model", "nets:NoSuchModel"], "nets has no 'NoSuchModel'"),
    ("no such module", ["--model", "no_such_module_for_convcalc:Net"], "cannot import 'no_such_module_for_convcalc'"),
    ("syntax error", ["--model", "syntax_error:Net"], "cannot import 'syntax_error': SyntaxError"),
    ("import error", ["--model", "import_error:Net"], "cannot import 'import_error': No module named"),
    ("raises at import", ["--model", "raises_at_import:Net"],
     "importing 'raises_at_import' failed: ValueError: broken at import"),
    ("exits at import", ["--model", "exits_at_import:Net"], "importing 'exits_at_import' exited (SystemExit(0))"),
    ("BaseException at import", ["--model", "boom_at_import:Net"], "importing 'boom_at_import' failed: Boom: at import"),
    ("a file raising", ["--model", "file_raises.py:Net"], "running file_raises.py failed: LookupError: in the file"),
    ("not callable", ["--model", "nets:NUMBER"], "nets:NUMBER is a int, not a model"),
    ("factory returns no model", ["--model", "nets:not_a_model"], "not_a_model(...) returned a int"),
    ("factory needs arguments", ["--model", "nets:factory"], "calling factory() failed: TypeError"),
    ("wrong --model-arg value", ["--model", "nets:factory", "--model-arg", "channels=many"],
     "calling factory(channels='many') failed: TypeError"),
    ("unknown --model-arg", ["--model", "nets:factory", "--model-arg", "colour=1"],
     "calling factory(colour=1) failed: TypeError"),
    ("--model-arg not KEY=VALUE", ["--model", "nets:factory", "--model-arg", "oops"],
     "--model-arg 'oops' is not KEY=VALUE"),
    ("--model-arg to an instance", ["--model", "nets:instance", "--model-arg", "a=1"], "already a model instance"),
    ("builtins:exit", ["--model", "builtins:exit"], "calling exit() exited (SystemExit(None))"),
    ("lookup raises", ["--model", "nets:lookup.model"], "looking up 'lookup.model' in nets failed: RuntimeError"),
    ("__getattr__ raises", ["--model", "nets:GetattrRaises"], "could not capture nets:GetattrRaises"),
    ("property raises", ["--model", "nets:property_raises"],
     "capturing nets:PropertyRaises failed: ValueError: training is not readable"),
    ("forward raises a BaseException", ["--model", "nets:Explodes"], "capturing nets:Explodes failed: Boom: boom"),
    ("forward exits", ["--model", "nets:ExitsInForward"], "capturing nets:ExitsInForward exited (SystemExit(0))"),
    ("forward raises KeyboardInterrupt", ["--model", "nets:Interrupts"],
     "capturing nets:Interrupts failed: it raised KeyboardInterrupt"),
    ("two inputs", ["--model", "nets:TwoInputs"], "could not capture nets:TwoInputs for an input of 3x8x8: TypeError"),
    ("branches on values", ["--model", "nets:Branches"],
     "could not capture nets:Branches for an input of 3x8x8: GuardOnDataDependentSymNode"),
    ("data-dependent size", ["--model", "nets:Nonzero"], "the size of nonzero depends on the values of the input"),
    ("returns its input", ["--model", "nets:ReturnsInput"], "the model's output does not depend on its input"),
]

# (id, arguments, the output shape, what stderr holds: the model's own prints, nothing of torch's)
SUCCESSES = [
    ("a dict", ["--model", "nets:DictOut"], [4, 6, 6], ""),
    ("a tuple with the input", ["--model", "nets:WithInput"], [4, 6, 6], ""),
    ("nested containers", ["--model", "nets:Nested"], [4, 6, 6], ""),
    ("a tuple operation", ["--model", "nets:Sorts"], [4, 6, 6], ""),
    ("an LSTM", ["--model", "nets:Recurrent", "5x8"], [5, 16], ""),
    ("prints", ["--model", "prints:Net"], [4, 6, 6],
     "printed at import\nwritten to sys.__stdout__\nwritten to descriptor 1\nprinted in forward\n"),
    ("logs and warns", ["--model", "logs:Net"], [4, 6, 6], ""),
]

CASES = {name: [*arguments, *([] if any("x" in a and a[0].isdigit() for a in arguments) else ["3x8x8"])]
         for name, arguments, *_ in FAILURES + SUCCESSES}


# Runs the cases as `python -m convcalc` does (convcalc.cli.run_app), each in a process of its own
# forked from one that has imported torch and convcalc but run nothing: a case's exit, prints and logs
# are its own, and torch is imported once, not once a case. Reads [[argv, stdout file, stderr file],
# ...] on stdin; writes the exit statuses as a JSON list.
_RUNNER = """
import json, os, sys
# imported once, before the cases fork (what torch.export and convcalc shape import, nothing run)
import torch, torch.export, torch.export._trace, torch._dynamo, torch._functorch.aot_autograd  # noqa: F401
import convcalc.engine.analysis, convcalc.cli.shape, convcalc.readers.pytorch.capture  # noqa: F401
from convcalc.cli import run_app

cases, statuses, running = json.load(sys.stdin), {}, {}
limit = max(2, os.cpu_count() or 2)
for index, (argv, out, err) in enumerate(cases):
    while len(running) >= limit:
        pid, status = os.wait()
        statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid:
        running[pid] = index
        continue
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = ["convcalc", *argv]
        try:
            run_app()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        except BaseException:
            import traceback
            traceback.print_exc()  # as the interpreter would
    finally:
        try:
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
while running:
    pid, status = os.wait()
    statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)
print(json.dumps([statuses[i] for i in range(len(cases))]))
"""


def _environment(folder: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("TORCH_LOGS", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT)])
    return env


def _convcalc(folder: Path, arguments, **options) -> subprocess.CompletedProcess:
    """``python -m convcalc ARGUMENTS``, in ``folder``, with it on the module path."""
    return subprocess.run([sys.executable, "-m", "convcalc", *arguments], cwd=folder, env=_environment(folder),
                          capture_output=True, text=True, timeout=600, **options)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The model modules, written to a temporary folder."""
    folder = tmp_path_factory.mktemp("models")
    for name, text in MODULES.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture(scope="module")
def results(folder):
    """Every case's result (as a CompletedProcess), by id."""
    names = list(CASES)
    files = [(folder / f"case{i}.out", folder / f"case{i}.err") for i in range(len(names))]
    cases = [[["shape", *CASES[name], "--json"], str(out), str(err)] for name, (out, err) in zip(names, files)]
    runner = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(cases), cwd=folder,
                            env=_environment(folder), capture_output=True, text=True, timeout=900)
    assert runner.returncode == 0, runner.stderr
    statuses = json.loads(runner.stdout)
    return {name: subprocess.CompletedProcess(case[0], status, out.read_text(), err.read_text())
            for name, case, status, (out, err) in zip(names, cases, statuses, files)}


@pytest.mark.needs_torch
@pytest.mark.parametrize("name", ["forward exits", "branches on values", "prints"])
def test_python_m_convcalc_answers_as_the_forked_runs(folder, results, name):
    alone = _convcalc(folder, ["shape", *CASES[name], "--json"])
    assert (alone.returncode, alone.stdout, alone.stderr) == (results[name].returncode, results[name].stdout,
                                                              results[name].stderr)


@pytest.mark.needs_torch
@pytest.mark.parametrize("name, arguments, message", FAILURES, ids=[case[0] for case in FAILURES])
def test_a_hostile_model_is_one_error_line_naming_it(results, name, arguments, message):
    result = results[name]
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 2, f"only the error and its hint, nothing of torch's logs:\n{result.stderr}"
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert lines[1].startswith("hint: ")
    error = json.loads(result.stdout)["error"]  # stdout: the error object alone
    assert message in error["message"] and error["type"] == "SpecError"


@pytest.mark.needs_torch
@pytest.mark.parametrize("name, arguments, output, stderr", SUCCESSES, ids=[case[0] for case in SUCCESSES])
def test_a_model_that_prints_logs_or_returns_containers_is_read(results, name, arguments, output, stderr):
    result = results[name]
    assert result.returncode == 0, result.stderr
    assert result.stderr == stderr  # the model's prints moved to stderr; torch's logs and all warnings gone
    assert json.loads(result.stdout)["output_shape"] == output


@pytest.mark.needs_torch
def test_every_result_of_a_container_is_an_output(results):
    layers = json.loads(results["a dict"].stdout)["layers"]
    assert sorted((layer["name"], layer["output_shape"]) for layer in layers) == [("aux", [2, 8, 8]),
                                                                               ("conv", [4, 6, 6])]
    sort = json.loads(results["a tuple operation"].stdout)
    assert [layer["name"] for layer in sort["layers"]] == ["conv", "sort", "sort.1", "mul"]
    assert sort["totals"]["uncounted_layers"] == 2  # sort, and its indices: shapes known, not costed


@pytest.mark.skipif(os.name != "posix", reason="closes the child's standard input")
def test_a_closed_stdin_is_one_error_line(tmp_path):
    result = _convcalc(tmp_path, ["shape", "-f", "-", "--json"], preexec_fn=lambda: os.close(0))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["error: file: cannot read stdin: standard input is closed",
                                          "hint: pipe the document in, or give -f FILE"]
    assert json.loads(result.stdout)["error"]["field"] == "file"


@pytest.mark.needs_torch
def test_a_failed_capture_leaves_logging_warnings_and_stdout_as_they_were(tmp_path, monkeypatch):
    import logging
    import warnings

    from convcalc.engine.errors import SpecError
    from convcalc.readers.pytorch import from_torch, load_model

    (tmp_path / "hostile_here.py").write_text(textwrap.dedent(MODULES["nets.py"]))
    monkeypatch.syspath_prepend(str(tmp_path))
    torch_logger = logging.getLogger("torch")
    level, filters, stdout, stderr = torch_logger.level, list(warnings.filters), sys.stdout, sys.stderr
    for name in ("Branches", "Explodes", "ExitsInForward"):
        with pytest.raises(SpecError, match=f"hostile_here:{name}"):
            from_torch(load_model(f"hostile_here:{name}"), (3, 8, 8))
    with pytest.raises(SpecError, match="exited"):
        load_model("builtins:exit")
    assert (torch_logger.level, warnings.filters, sys.stdout, sys.stderr) == (level, filters, stdout, stderr)
