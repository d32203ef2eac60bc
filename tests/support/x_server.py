"""A private X server with a system tray: Xvfb (it picks a free display itself) and trayer as the tray host.

Used by the tray tests (tests/gui/test_tray.py) and the tray soak (benchmarks/soak_rig.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tests.support.processes import stop

#: What an xcb child process needs besides DISPLAY.
XCB = {"QT_QPA_PLATFORM": "xcb", "QT_API": "pyside6"}


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """A private Xvfb server and its display number; RuntimeError when it names none."""
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        number = pipe.readline().strip().decode()
    if not number:
        stop(xvfb)
        raise RuntimeError(f"Xvfb printed no display number (exit code {xvfb.poll()})")
    return xvfb, number


def start_trayer(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """trayer on the display in *env*: the system tray the tray icon docks into."""
    return subprocess.Popen(["trayer", "--edge", "top"], env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def display_with_tray() -> Iterator[dict[str, str]]:
    """Xvfb + trayer for the time of the block; yields DISPLAY and the xcb variables."""
    xvfb, number = start_xvfb()
    trayer: subprocess.Popen[bytes] | None = None
    try:
        env = {"DISPLAY": f":{number}", **XCB}
        trayer = start_trayer(dict(os.environ, **env))
        yield env
    finally:
        if trayer is not None:
            stop(trayer)
        stop(xvfb)
