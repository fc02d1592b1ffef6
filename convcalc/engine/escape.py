"""The one escape for text from the input: how a layer name, a path, an operation's name, a remark
or a quoted token is shown, so that no input can drive a terminal or hide what it says.

Error messages ask it here; every output format but JSON (whose encoder escapes on its own, and
which stays exact data) asks it through ``convcalc.output.render``.
"""

from __future__ import annotations


def escape(text: str) -> str:
    """``text`` with every character that is not printable written as a Python escape: controls
    (ESC, BEL, DEL, the C1 range \\x80-\\x9f, tab and newline too), format characters (bidi
    overrides and isolates, zero-width characters), line and paragraph separators, spaces other
    than the plain space, lone surrogates and unassigned code points. Printable text comes through
    as it is (``escape(escape(s)) == escape(s)``).

    >>> print(escape("relu\\x1b]8;;file:///etc/passwd\\x07 \\u202eevil\\u2028"))
    relu\\x1b]8;;file:///etc/passwd\\x07 \\u202eevil\\u2028
    >>> escape("Conv2d 3→64 k=3")
    'Conv2d 3→64 k=3'
    """
    if text.isprintable():  # the common case, at C speed: a table of a million names stays fast
        return text
    return "".join(ch if ch.isprintable() else _code(ch) for ch in text)


def escape_positions(text: str) -> tuple[str, list[int]]:
    """``escape(text)`` and where each position of ``text`` lands in it (one more entry, for the
    end), so a span of the input can be underlined in its escaped form.

    >>> escape_positions("a\\x1b[2Jb")
    ('a\\\\x1b[2Jb', [0, 1, 5, 6, 7, 8, 9])
    """
    out, positions, length = [], [], 0
    for ch in text:
        positions.append(length)
        piece = ch if ch.isprintable() else _code(ch)
        out.append(piece)
        length += len(piece)
    positions.append(length)
    return "".join(out), positions


def _code(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
