"""Persistent events: an SQLite table the CLI, the GUI and tests read back.

Events are kept in their own database so that reading a long history never
competes with the journal, whose writes guard the mail.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

from pop3gui.core.events import Event, EventId, Severity
from pop3gui.core.paths import touch_private

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    id INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    account TEXT NOT NULL,
    uid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    cause TEXT NOT NULL,
    fix TEXT NOT NULL,
    transcript TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_account ON events(account, seq);
"""
_COLUMNS = "seq, time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript"


class EventStore:
    """Appends events and reads them back in order (``seq`` only ever grows)."""

    def __init__(self, path: Path) -> None:
        touch_private(path)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def append(self, event: Event) -> int:
        cur = self._db.execute(
            "INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix,"
            " transcript) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (event.time.isoformat(), int(event.id), int(event.severity), event.account, event.uid,
             event.message_id, event.subject, event.text, event.cause, event.fix, event.transcript),
        )
        return int(cur.lastrowid or 0)

    def __call__(self, event: Event) -> None:
        self.append(event)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def since(self, seq: int, limit: int = 10_000) -> list[Event]:
        """Events after ``seq`` in order: how a follower or a live view catches up."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [_row_to_event(r) for r in rows]

    def latest(self, limit: int) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_row_to_event(r) for r in reversed(rows)]

    def all(self) -> Iterator[Event]:
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq"):
            yield _row_to_event(row)


def _row_to_event(row: tuple[object, ...]) -> Event:
    seq, time, eid, sev, account, uid, mid, subject, text, cause, fix, transcript = row
    try:
        event_id = EventId(int(str(eid)))
    except ValueError:  # written by a newer release
        event_id = EventId.MESSAGE_FAILED
    return Event(
        id=event_id, severity=Severity(int(str(sev))), text=str(text), account=str(account), uid=str(uid),
        message_id=str(mid), subject=str(subject), cause=str(cause), fix=str(fix), transcript=str(transcript),
        time=datetime.fromisoformat(str(time)), seq=int(str(seq)),
    )


class EventLog:
    """Writes events to a log file that rotates at about 2 MB, keeping 5 older ones.

    Each event is one write and one flush: the log is what an admin reads
    after a crash.  Every file, the rotated ones too, is readable only by its
    owner (the log names senders and subjects).
    """

    def __init__(self, path: Path, level: int = logging.INFO, *, max_bytes: int = 2 * 1024 * 1024,
                 backups: int = 5) -> None:
        self._path = path
        self._level = level
        self._max_bytes = max_bytes
        self._backups = backups
        self._file = self._open()
        self._size = self._file.tell()

    def _open(self) -> TextIO:
        touch_private(self._path)
        return self._path.open("a", encoding="utf-8", errors="backslashreplace")

    def __call__(self, event: Event) -> None:
        if event.severity < self._level:
            return
        line = event.full_text() + "\n"
        if self._size and self._size + len(line) > self._max_bytes:
            self._rotate()
        self._file.write(line)
        self._file.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        """pop3gui.log -> pop3gui.log.1 -> ... -> pop3gui.log.N (the oldest is dropped)."""
        self._file.close()
        for n in range(self._backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                os.replace(older, self._path.with_name(f"{self._path.name}.{n + 1}"))
        os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
        self._file = self._open()
        self._size = 0

    def close(self) -> None:
        self._file.close()
