"""The rotating log file: every event at or above ``[logging] level``, one line each, for a person to read.

Kept apart from the SQLite store (:mod:`pop3gui.core.events.store`): a file
an admin can tail or send along, which goes on working when the store cannot
be written, and says a failure of its own once on stderr instead of stopping
the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from pop3gui.core.events.model import Event
from pop3gui.core.state.paths import touch_private

__all__ = ["EventLog"]


class EventLog:
    """Writes events to a log file that rotates at about 2 MB, keeping 5 older ones.

    Each event is one write and one flush: the log is what an admin reads
    after a crash.  Every file, the rotated ones too, is readable only by its
    owner (the log names senders and subjects).  Writing never raises: a log
    that cannot be written (full disk, a file another process holds open on
    Windows) is reported once on stderr, and the events still reach the store.
    """

    def __init__(self, path: Path, level: int = logging.INFO, *, max_bytes: int = 2 * 1024 * 1024,
                 backups: int = 5) -> None:
        self._path = path
        self._level = level
        self._max_bytes = max_bytes
        self._backups = backups
        self._file: BinaryIO | None = None
        self._size = 0
        self._rotate_at = max_bytes
        self._reported: set[str] = set()  # kinds of failure already said on stderr
        self._open()

    def _open(self) -> None:
        """(Re)open the file for appending; a failure leaves it closed until the next event."""
        try:
            touch_private(self._path)
            if stat.S_ISREG(os.stat(self._path).st_mode):  # an older release may have made it 0644
                with contextlib.suppress(OSError):
                    os.chmod(self._path, 0o600)
            self._file = self._path.open("ab")
            self._size = self._file.tell()
        except OSError as exc:
            self._file = None
            self._report("write", exc)

    def __call__(self, event: Event) -> None:
        if event.severity < self._level:
            return
        data = (event.full_text() + "\n").encode("utf-8", "backslashreplace")
        if self._file is None:
            self._open()
            if self._file is None:
                return
        if self._size and self._size + len(data) > self._rotate_at:
            self._rotate()
            if self._file is None:
                return
        try:
            self._file.write(data)
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._report("write", exc)
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
            self._file = None  # reopened at the next event
            return
        self._size += len(data)
        self._reported.discard("write")  # a later failure is news again

    def _rotate(self) -> None:
        """pop3gui.log -> pop3gui.log.1 -> ... -> pop3gui.log.N (the oldest is dropped).

        The current file is moved aside first: if that fails (on Windows another
        process may hold it open) nothing else is touched, and writing goes on
        in the same file until it has grown by another max_bytes.
        """
        assert self._file is not None
        self._file.close()
        self._file = None
        moving = self._path.with_name(self._path.name + ".rotating")
        try:
            os.replace(self._path, moving)
        except OSError as exc:
            self._report("rotate", exc)
            self._rotate_at = self._size + self._max_bytes
            self._open()
            return
        for n in range(self._backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            with contextlib.suppress(OSError):  # missing, or held open elsewhere: keep going
                os.replace(older, self._path.with_name(f"{self._path.name}.{n + 1}"))
        with contextlib.suppress(OSError):
            os.replace(moving, self._path.with_name(f"{self._path.name}.1"))
        self._rotate_at = self._max_bytes
        self._open()

    def _report(self, kind: str, exc: BaseException) -> None:
        if kind not in self._reported:
            self._reported.add(kind)
            print(f"pop3gui: cannot write the log file {self._path}: {exc}; events still go to the event "
                  "store (pop3gui events).", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
            self._file = None
