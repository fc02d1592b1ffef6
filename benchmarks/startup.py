"""Start-up time of the command line against a bare two-command Typer app.

    python benchmarks/startup.py [--runs 15]

Times, as the median wall time of fresh processes, ``convcalc --help`` and a
one-layer ``convcalc shape`` against the same two commands of a minimal Typer
app, alternating the two so both see the same machine. Targets: at most 1.2x
for --help and 1.4x for shape.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_APP = '''
import typer

app = typer.Typer(add_completion=False)


@app.command()
def shape(input: str, layers: list[str]) -> None:
    """A stand-in command."""
    print(input, layers)


@app.command()
def other() -> None:
    """A second command, so Typer builds a group as convcalc's does."""


app()
'''


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bare = Path(folder) / "bare.py"
        bare.write_text(BARE_APP)
        ours = [sys.executable, "-m", "convcalc"]
        cases = {
            "--help": (ours + ["--help"], [sys.executable, str(bare), "--help"], 1.2),
            "shape": (ours + ["shape", "3x8x8", "conv:4,k=3"], [sys.executable, str(bare), "shape", "3x8x8", "conv:4,k=3"], 1.4),
        }
        print(f"{'command':10s} {'convcalc ms':>12s} {'bare Typer ms':>14s} {'ratio':>6s} {'target':>7s}")
        for name, (convcalc, baseline, target) in cases.items():
            _time(convcalc), _time(baseline)  # warm the file cache
            mine, theirs = [], []
            for _ in range(args.runs):
                mine.append(_time(convcalc))
                theirs.append(_time(baseline))
            a, b = statistics.median(mine), statistics.median(theirs)
            print(f"{name:10s} {a * 1e3:12.1f} {b * 1e3:14.1f} {a / b:6.2f} {'<= ' + str(target):>7s}")


if __name__ == "__main__":
    main()
