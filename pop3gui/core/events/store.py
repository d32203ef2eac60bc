"""Persistent events: an SQLite table the CLI, the GUI and tests read back.

Events are kept in their own database so that reading a long history never
competes with the journal, whose writes guard the mail.  A store written by an
earlier release (without the typed fields) gains their columns when opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, TypeVar

from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.state.paths import touch_private

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
CREATE INDEX IF NOT EXISTS events_severity ON events(severity, seq);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
"""
# The indexes are created by CREATE ... IF NOT EXISTS on every open: a store of an earlier release gets
# them (once, the first time it is opened) like a new one.  ``time`` is ISO 8601 in UTC, so text order is
# time order and ``--since`` is an index range.
# The typed fields, added in place to stores of earlier releases (their rows get the defaults).
_TYPED_COLUMNS = (
    ("recipient", "TEXT NOT NULL DEFAULT ''"),
    ("reply_code", "INTEGER"),  # NULL: the event quotes no reply
    ("reply_enhanced", "TEXT NOT NULL DEFAULT ''"),
    ("reply_text", "TEXT NOT NULL DEFAULT ''"),
    ("diagnosis", "TEXT NOT NULL DEFAULT ''"),
    ("outcome", "TEXT NOT NULL DEFAULT ''"),
)
_NO_SEQ = 2**63 - 1  # past every seq: nothing is that recent
_Name = TypeVar("_Name", Failure, Outcome)
_COLUMNS = ("seq, time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript, "
            + ", ".join(name for name, _ in _TYPED_COLUMNS))


class EventStore:
    """Appends events and reads them back in order (``seq`` only ever grows)."""

    def __init__(self, path: Path) -> None:
        touch_private(path)
        # A long timeout: the first open of a large store of an earlier release builds its indexes.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.create_function("pop3gui_contains", 2, _contains, deterministic=True)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_typed_columns()

    def _add_typed_columns(self) -> None:
        """Migrate a store of an earlier release; processes opening it at once migrate it once."""
        if self._missing_columns():
            self._db.execute("BEGIN IMMEDIATE")  # the others wait here, then find nothing missing
            try:
                for name, kind in self._missing_columns():
                    self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _missing_columns(self) -> list[tuple[str, str]]:
        have = {str(row[1]) for row in self._db.execute("PRAGMA table_info(events)")}
        return [(name, kind) for name, kind in _TYPED_COLUMNS if name not in have]

    def close(self) -> None:
        self._db.close()

    def append(self, event: Event) -> int:
        reply = event.reply
        cur = self._db.execute(
            f"INSERT INTO events ({_COLUMNS.removeprefix('seq, ')}) VALUES ({', '.join('?' * 17)})",
            (_stored_time(event.time), int(event.id), int(event.severity), event.account, event.uid,
             event.message_id, event.subject, event.text, event.cause, event.fix, event.transcript,
             event.recipient, reply.code if reply else None, reply.enhanced if reply else "",
             reply.text if reply else "", event.diagnosis or "", event.outcome or ""),
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

    def query(self, *, account: str | None = None, min_severity: Severity | None = None,
              since: datetime | None = None, grep: str | None = None, after_seq: int = 0,
              limit: int | None = None) -> list[Event]:
        """The events that pass every filter given, oldest first; with *limit*, the newest *limit* of them.

        *account* is an exact account name; *min_severity* keeps that level and
        above; *since* keeps events at or after that moment (a naive time is
        local time); *grep* keeps events whose text, cause or fix contains it,
        ignoring case; *after_seq* keeps events stored after that one (how a
        follower catches up).  The filtering is done by SQLite, on indexes
        where one applies, so a store of millions of events answers at once.
        """
        where: list[str] = ["seq > ?"]
        params: list[object] = [after_seq]
        if account is not None:
            where.append("account = ?")
            params.append(account)
        if min_severity is not None:
            # The levels listed (not a range): the (severity, seq) index then yields each level in seq
            # order, so the few errors of a long history are read without the rest.
            levels = [int(s) for s in Severity if s >= min_severity]
            where.append(f"severity IN ({', '.join('?' * len(levels))})")
            params.extend(levels)
        if since is not None:
            # Times grow with seq, nearly: the first stored at or after *since* (found on the time index)
            # bounds the seq range to read, and the time test itself keeps the answer exact.
            stamp = _stored_time(since.astimezone() if since.tzinfo is None else since)
            # One lower bound on seq (SQLite ranges the primary key on one of them only).
            where[0] = (f"seq >= max(? + 1, (SELECT coalesce(min(seq), {_NO_SEQ}) FROM events INDEXED BY "
                        "events_time WHERE time >= ?))")
            params.insert(1, stamp)
            where.append("time >= ?")
            params.append(stamp)
        if grep:
            if grep.isascii():  # LIKE ignores ASCII case itself, without a call into Python per row
                pattern = "%" + grep.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                where.append("(text LIKE ? ESCAPE '\\' OR cause LIKE ? ESCAPE '\\' OR fix LIKE ? ESCAPE '\\')")
                params.extend([pattern] * 3)
            else:
                where.append("pop3gui_contains(text || char(10) || cause || char(10) || fix, ?)")
                params.append(grep.casefold())
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)}"
        if limit is None:
            rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
            return [_row_to_event(r) for r in rows]
        rows = self._db.execute(sql + " ORDER BY seq DESC LIMIT ?", [*params, max(limit, 0)]).fetchall()
        return [_row_to_event(r) for r in reversed(rows)]

    def all(self) -> Iterator[Event]:
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq"):
            yield _row_to_event(row)


def _stored_time(moment: datetime) -> str:
    """ISO 8601 in UTC for a zone-aware time (text order is then time order); a naive one as it is."""
    return (moment.astimezone(timezone.utc) if moment.tzinfo is not None else moment).isoformat()


def _contains(haystack: object, needle: object) -> bool:
    return str(needle) in str(haystack).casefold()


def _row_to_event(row: tuple[object, ...]) -> Event:
    (seq, time, eid, sev, account, uid, mid, subject, text, cause, fix, transcript,
     recipient, reply_code, reply_enhanced, reply_text, diagnosis, outcome) = row
    try:
        event_id = EventId(int(str(eid)))
    except ValueError:  # written by a newer release
        event_id = EventId.MESSAGE_FAILED
    return Event(
        id=event_id, severity=Severity(int(str(sev))), text=str(text), account=str(account), uid=str(uid),
        message_id=str(mid), subject=str(subject), cause=str(cause), fix=str(fix), transcript=str(transcript),
        recipient=str(recipient),
        reply=None if reply_code is None else Reply(int(str(reply_code)), str(reply_enhanced), str(reply_text)),
        diagnosis=_known(Failure, diagnosis), outcome=_known(Outcome, outcome),
        time=datetime.fromisoformat(str(time)), seq=int(str(seq)),
    )


def _known(kind: type[_Name], value: object) -> _Name | None:
    """A stored name as its enum member; None when empty or written by a newer release."""
    try:
        return kind(str(value)) if value else None
    except ValueError:
        return None


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
