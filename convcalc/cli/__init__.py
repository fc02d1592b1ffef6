"""The ``convcalc`` command line: parse arguments, call the core, render.

One module per command; what they share sits beside them: ``options`` (every
shared argument and option, declared once), ``source`` (the network options as
one ``NetworkSource``), ``values`` (reading option values), ``common`` (format,
device, errors) and ``show`` (printing results). Data goes to stdout; errors, hints, notes and
progress to stderr. JSON is printed with plain ``print`` so nothing wraps it.
The engine is imported inside the commands, so ``--help`` never loads it.
"""

from . import commands  # noqa: F401 - registers every command on app
from .app import ExitCode, app, run_app
from .completion import completion_script

__all__ = ["ExitCode", "app", "completion_script", "run_app"]
