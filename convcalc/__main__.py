"""``python -m convcalc``."""

from .cli import run

run()
