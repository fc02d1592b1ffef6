"""The README is the front door: short, its quick start is what the program prints, and its test command is
the one CI runs. Its other examples run with every page's (tests/test_docs.py)."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from convcalc.cli import app

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _run(command_line: str):
    words = shlex.split(command_line)
    assert words[0] == "convcalc"
    return CliRunner().invoke(app, words[1:])


def test_quick_start_output_is_what_the_program_prints():
    command = re.search(r"pip install \. && (convcalc shape [^\n]+)", README).group(1)
    shown = re.search(r"```\n(#  .*?)```", README, re.S).group(1)
    result = _run(command)
    assert result.exit_code == 0
    assert result.stdout == shown


def test_the_quick_start_is_two_commands():
    section = README.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2 and all("\n" not in command for command in commands), commands
    assert commands[0].startswith("pip install . && convcalc ")
    assert commands[1].startswith("pip install torch") and commands[1].endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    command = re.search(r"```bash\n(pip install torch[^\n]+)\n```", README).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_the_readme_stays_short_and_points_at_the_documentation():
    assert len(README.splitlines()) <= 250
    assert "docs/index.md" in README or "](docs/" in README
    for page in ("tokens", "documents", "model", "onnx", "api", "cli"):
        assert f"(docs/{page}.md)" in README, page


def test_the_install_needs_no_published_release():
    """convcalc is not on PyPI: every install line installs from the clone."""
    for line in README.splitlines():
        if line.startswith("pip install") and "convcalc" in line.split("#")[0].split("&&")[0]:
            raise AssertionError(f"installs a published release: {line}")
