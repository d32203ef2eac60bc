"""Running the command line in a real pseudo-terminal, as an admin at a console would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time


def run_in_pty(*args: str, answer: bytes = b"", columns: int = 100, timeout: float = 120) -> tuple[int, bytes]:
    """``python -m pop3gui ARGS`` with stdin, stdout and stderr on a new terminal; its exit code and output.

    *answer* is typed once the program prints something (a question).
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ, TERM="xterm", COLUMNS=str(columns))
    proc = subprocess.Popen([sys.executable, "-m", "pop3gui", *args], stdin=follower, stdout=follower,
                            stderr=follower, env=env, close_fds=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the program closed its terminal
                    break
                if not data:
                    break
                out += data
                if answer:
                    os.write(leader, answer)
                    answer = b""
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, bytes(out)
