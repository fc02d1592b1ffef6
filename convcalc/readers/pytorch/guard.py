"""Running the user's code (importing a model's module, building the model, capturing it) so that
whatever it does stays inside: what it raises or exits with becomes one ``SpecError``, and what it
or PyTorch prints or logs goes nowhere near the command's output.

Inside ``user_code``, standard output goes to standard error (the model's prints cannot corrupt
``--json``), every warning is dropped, and the ``torch`` loggers are silenced (unless the user asked
for them with ``TORCH_LOGS``); all of it is restored afterwards. A ``KeyboardInterrupt`` is the
user's only when they pressed Ctrl-C; one the model raises is an error like any other.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import threading
import warnings

from ...engine.errors import ConvcalcError, SpecError

# spec.py imports a model's file under this name, plus its stem.
MODEL_FILE_PREFIX = "_convcalc_model_"
# The longest message of the user's exception that an error line quotes.
_QUOTED = 200


@contextlib.contextmanager
def user_code(doing: str, *, hint: str, field: str = "model", held: bool = False):
    """Run the block as the user's code; anything but convcalc's own errors (and a real Ctrl-C)
    becomes ``SpecError("{doing} failed: {type}: {message}")`` (or ``... exited``). ``held``: what
    the block writes to ``sys.stdout`` or ``sys.stderr`` is held back, and shown only if it succeeds
    (``torch.export`` prints a partial graph to stderr when it fails).

    >>> with user_code("calling f()", hint="fix f"):
    ...     raise SystemExit(3)
    Traceback (most recent call last):
    convcalc.engine.errors.SpecError: calling f() exited (SystemExit(3)) instead of returning
    """
    interrupted = []
    with quiet(held), _watching_ctrl_c(interrupted):
        try:
            yield
        except (ConvcalcError, MemoryError):
            raise
        except KeyboardInterrupt:
            if interrupted:
                raise
            raise SpecError(f"{doing} failed: it raised KeyboardInterrupt", hint=hint, field=field) from None
        except SystemExit as err:
            raise SpecError(f"{doing} exited (SystemExit({_shown(err.code)})) instead of returning",
                            hint="convcalc runs the model's code, which must not end the program (sys.exit, exit())",
                            field=field) from None
        except BaseException as err:  # noqa: BLE001 - the user's code may raise anything
            raise SpecError(f"{doing} failed: {describe(err)}", hint=hint, field=field) from None


def describe(err: BaseException) -> str:
    """``Type: first line of the message``, whatever the exception's ``__str__`` does.

    >>> describe(ValueError("bad value\\nmore"))
    'ValueError: bad value'
    """
    name = type(err).__name__
    try:
        text = str(err).strip()
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return f"{name} (its message cannot be shown)"
    line = text.splitlines()[0] if text else ""
    if len(line) > _QUOTED:
        line = line[:_QUOTED] + "..."
    return f"{name}: {line}" if line else name


def _shown(value) -> str:
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001
        text = type(value).__name__
    return text if len(text) <= _QUOTED else text[:_QUOTED] + "..."


@contextlib.contextmanager
def quiet(held: bool = False):
    """Standard output to standard error (or both held, to be written to standard error only if the
    block succeeds), warnings dropped and the ``torch`` loggers silenced, while the block runs;
    everything restored afterwards (also ``sys.stdout`` and ``sys.stderr`` if the block replaced them)."""
    stdout, stderr = sys.stdout, sys.stderr
    levels = _silence_torch_logs()
    hold = io.StringIO() if held else None
    try:
        with _stdout_descriptor_to_stderr(), warnings.catch_warnings(record=True):
            warnings.simplefilter("ignore")
            if hold is not None:
                sys.stdout = sys.stderr = hold
            elif stderr is not None:
                sys.stdout = stderr
            yield
        if hold is not None and hold.getvalue() and stderr is not None:
            stderr.write(hold.getvalue())
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        for logger, level in levels:
            logger.setLevel(level)


def _silence_torch_logs() -> list:
    """Raise every ``torch`` logger above CRITICAL (new ones inherit it from ``torch``); their
    previous levels, to restore."""
    if os.environ.get("TORCH_LOGS"):  # the user asked for torch's logs
        return []
    names = ["torch", *(name for name in list(logging.root.manager.loggerDict) if name.startswith("torch."))]
    levels = []
    for name in names:
        logger = logging.getLogger(name)
        levels.append((logger, logger.level))
        logger.setLevel(logging.CRITICAL + 1)
    return levels


@contextlib.contextmanager
def _stdout_descriptor_to_stderr():
    """Descriptor 1 onto descriptor 2 (for what writes there directly: ``sys.__stdout__``, C code),
    when the process's standard output is that descriptor; otherwise nothing."""
    out = sys.stdout
    try:
        out.flush()
        moved = out.fileno() == 1 and sys.stderr.fileno() == 2
        saved = os.dup(1) if moved else None
        if moved:
            os.dup2(2, 1)
    except (AttributeError, OSError, ValueError):  # not a real descriptor (a test's capture), or closed
        moved, saved = False, None
    try:
        yield
    finally:
        if moved:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                out.flush()
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _watching_ctrl_c(interrupted: list):
    """Note in ``interrupted`` when the user presses Ctrl-C. Only the main thread can watch, and only
    Python's own handler is replaced: elsewhere (a notebook) every KeyboardInterrupt counts as the user's."""
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.SIG_IGN:  # Ctrl-C is ignored here (a background job): the interrupt is the model's
        yield
        return
    if threading.current_thread() is not threading.main_thread() or handler is not signal.default_int_handler:
        interrupted.append(None)
        yield
        return

    def pressed(signum, frame):
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, pressed)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def model_label(module) -> str:
    """The model as ``--model`` names it, from its class: ``m_boom:Net``, ``net.py:Net``."""
    cls = type(module)
    where = cls.__dict__.get("__module__")
    where = where if isinstance(where, str) else "?"
    if where.startswith(MODEL_FILE_PREFIX):
        where = where[len(MODEL_FILE_PREFIX):] + ".py"
    return f"{where}:{cls.__qualname__}"


