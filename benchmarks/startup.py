"""Start-up time of the command line against a bare Typer app of the same shape.

    python benchmarks/startup.py [--rounds 30]

The bare app is a Typer group of two commands whose ``shape`` takes an INPUT and LAYER...
arguments, as convcalc's does, and prints them: what any Typer command line pays to start.
Each round runs, as fresh processes and in turn, ``convcalc --help`` and the bare app's
``--help``, then ``convcalc shape 3x32x32 conv:8,k=3`` and the bare app's ``shape`` with
the same arguments, so both sides of a ratio see the same machine at the same moment.
Each round gives a ratio per command; the median of the rounds is printed with the
spread of the middle half (25th to 75th percentile) and the extremes. Targets: at most
1.1x for --help and 1.25x for shape (``--json`` and ``--format csv`` are timed as well:
they must not cost more than the table). No threshold is tested: timings are the
machine's, and only this script reports them.
"""

from __future__ import annotations

import argparse
import os
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

LAYER = ["3x32x32", "conv:8,k=3"]
# name: (convcalc's arguments, the bare app's arguments, target ratio or None)
CASES = {
    "--help": (["--help"], ["--help"], 1.1),
    "shape": (["shape", *LAYER], ["shape", *LAYER], 1.25),
    "shape --json": (["shape", *LAYER, "--json"], ["shape", *LAYER], None),
    "shape --format csv": (["shape", *LAYER, "--format", "csv"], ["shape", *LAYER], None),
}


# Both sides start as an installed command does: from bytecode written on the warm-up run, even where
# the environment asks Python not to write any (otherwise every changed module compiles at each start).
_ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENVIRONMENT)
    return time.perf_counter() - start


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default: 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bare = Path(folder) / "bare.py"
        bare.write_text(BARE_APP)
        ours = [sys.executable, "-m", "convcalc"]
        theirs = [sys.executable, str(bare)]
        for mine, base, _ in CASES.values():  # warm the file cache and the bytecode
            _time(ours + mine), _time(theirs + base)
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in CASES}
        for _ in range(args.rounds):
            for name, (mine, base, _) in CASES.items():
                times[name][0].append(_time(ours + mine))
                times[name][1].append(_time(theirs + base))
    print(f"{args.rounds} interleaved rounds; ratio = convcalc / bare Typer, per round")
    print(f"{'command':20s} {'convcalc ms':>11s} {'bare ms':>8s} {'ratio':>6s} {'middle half':>13s} "
          f"{'extremes':>13s} {'target':>7s}")
    for name, (mine, base) in times.items():
        ratios = [a / b for a, b in zip(mine, base)]
        target = CASES[name][2]
        print(f"{name:20s} {statistics.median(mine) * 1e3:11.1f} {statistics.median(base) * 1e3:8.1f} "
              f"{statistics.median(ratios):6.2f} {_quantile(ratios, 0.25):6.2f}-{_quantile(ratios, 0.75):<6.2f} "
              f"{min(ratios):6.2f}-{max(ratios):<6.2f} {'<= ' + str(target) if target else '':>7s}")


if __name__ == "__main__":
    main()
