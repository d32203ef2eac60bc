"""One runner per state folder: an OS file lock that dies with its process.

The lock is the one platform-specific piece of the state handling, so it
lives behind :func:`try_lock_file`: ``fcntl.flock`` on POSIX (tested here),
``msvcrt.locking`` on Windows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from pop3gui.core.errors import StateError


def try_lock_file(handle: IO[str]) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False if another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    else:
        import fcntl

        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


class RunnerLock:
    """Held while a runner works on a state folder; names the holder's pid when refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="ascii")
        if not try_lock_file(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StateError(
                f"another pop3gui runner (pid {holder}) is already working on {self.path.parent}",
                cause="Only one connector may download a state folder's mailboxes at a time, or messages "
                "could be delivered twice.",
                fix=f"Stop the other runner (pid {holder}) or use it (for instance its tray icon); "
                "set POP3GUI_HOME to run a separate installation.",
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
