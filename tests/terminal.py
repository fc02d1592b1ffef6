"""Running convcalc in a real pseudo-terminal (test_terminal, test_roofline, test_escape)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys


def run_in_pty(args, width: int, *, stdin: bytes | None = None, raw: bool = False) -> str:
    """The command's screen in a pseudo-terminal ``width`` columns wide, escape codes removed (``raw``:
    kept, as the terminal received them); ``stdin``, if given, is piped in."""
    import fcntl  # POSIX only: imported here, so the module imports everywhere
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    child = subprocess.Popen([sys.executable, "-m", "convcalc", *args], stdin=subprocess.PIPE if stdin else slave,
                             stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    if stdin:
        child.stdin.write(stdin)
        child.stdin.close()
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    return screen if raw else re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).replace("\r", "")
