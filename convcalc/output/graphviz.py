"""Drawing DOT text with Graphviz's ``dot`` program, where it is installed: a subprocess with a
time limit and no shell, given the text on its standard input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ..engine.errors import ResourceError, SpecError

# How long dot may take (seconds): a network of a few thousand layers takes seconds; one of hundreds
# of thousands would take hours, and is stopped. CONVCALC_DOT_TIMEOUT changes it.
DOT_TIMEOUT = 300

NO_DOT = ("drawing {what} needs Graphviz's dot program, which is not on PATH: install it (apt-get install "
          "graphviz, or brew install graphviz), or write the graph as text (-o net.dot or -o net.mmd; "
          "--format dot or --format mermaid)")


def dot_program() -> str | None:
    """Where ``dot`` is, or None."""
    return shutil.which("dot")


def require_dot(what: str) -> str:
    """``dot``'s path, or the one-line error saying how to install it."""
    program = dot_program()
    if program is None:
        raise SpecError(NO_DOT.format(what=what))
    return program


def run_dot(text: str, kind: str) -> bytes:
    """``text`` drawn by ``dot -T<kind>`` (svg or png)."""
    program = require_dot(kind.upper())
    try:
        timeout = float(os.environ.get("CONVCALC_DOT_TIMEOUT", DOT_TIMEOUT))
    except ValueError:
        raise SpecError("CONVCALC_DOT_TIMEOUT must be a number of seconds", hint="e.g. CONVCALC_DOT_TIMEOUT=600") \
            from None
    try:
        done = subprocess.run([program, f"-T{kind}"], input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ResourceError(f"Graphviz's dot did not finish drawing within {timeout:g} s",
                            hint="draw fewer layers (--depth does not drop any), raise CONVCALC_DOT_TIMEOUT, or "
                                 "use --format mermaid") from None
    except OSError as err:
        raise SpecError(f"cannot run {program}: {err.strerror}", hint="check the Graphviz installation") from None
    if done.returncode != 0 or not done.stdout:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0][:200]
        raise ResourceError(f"Graphviz's dot failed (exit {done.returncode}): {first}",
                            hint="write the graph with --format dot and run dot on it to see more")
    return done.stdout


def inline_svg(svg: bytes) -> str:
    """dot's SVG as an element to put inside an HTML page: without its XML declaration, doctype and
    comments, and without namespace declarations (HTML puts an <svg> in its namespace by itself), so
    the page names no address at all."""
    text = svg.decode("utf-8")
    text = text[text.find("<svg"):]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=2)
