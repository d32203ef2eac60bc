"""Persistent events: an SQLite table the CLI, the GUI and tests read back.

Events are kept in their own database so that reading a long history never
competes with the journal, whose writes guard the mail.
"""

from __future__ import annotations

import logging
import logging.handlers
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

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
    """Writes events to a rotating log file (5 files of 2 MB)."""

    def __init__(self, path: Path, level: int = logging.INFO) -> None:
        touch_private(path)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        self._level = level

    def __call__(self, event: Event) -> None:
        if event.severity < self._level:
            return
        record = logging.LogRecord("pop3gui", int(event.severity), "", 0, "%s", (event.full_text(),), None)
        self._handler.emit(record)
        self._handler.flush()

    def close(self) -> None:
        self._handler.close()
