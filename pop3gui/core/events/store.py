"""Persistent events: an SQLite table the CLI, the GUI and tests read back.

Events are kept in their own database so that reading a long history never
competes with the journal, whose writes guard the mail.  A store written by an
earlier release (without the typed fields) gains their columns when opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from pop3gui.core.events.model import Event, Severity
from pop3gui.core.events.schema import (
    COLUMNS,
    EVENT_COLUMNS,
    FTS_COLUMNS,
    FTS_SCHEMA,
    SCHEMA,
    TYPED_COLUMNS,
    to_row,
    from_row,
)
from pop3gui.core.events.search import (
    GREP_FIELDS,
    NO_SEQ,
    SEARCH_SCAN_ROWS,
    EventFilter,
    contains,
    indexable,
    search_match,
    where,
)
from pop3gui.core.events.writer import BUSY_TIMEOUT_MS, WAL_BYTES, WRITE_BATCH, WRITE_DELAY_S, EventWriter
from pop3gui.core.state.paths import touch_private
from pop3gui.core.state.sqlite_space import use_wal_limit

FEW_EVENTS = 200  # an account with at most this many events drives a search of the text index (_search_join)
__all__ = ["EventStore", "WAL_BYTES", "WRITE_BATCH", "WRITE_DELAY_S"]


class EventStore:
    """Appends events and reads them back in order (``seq`` only ever grows)."""

    def __init__(self, path: Path) -> None:
        touch_private(path)
        self.path = path
        # A long timeout: the first open of a large store of an earlier release builds its indexes.
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._writer = EventWriter(self._conn, path)
        self._conn.create_function("pop3gui_contains", 2, contains, deterministic=True)
        if not self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            # A new store: retention's deletes can then give pages back (PRAGMA incremental_vacuum).
            # It only takes effect before the first table is created.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        use_wal_limit(self._db, WAL_BYTES)  # the WAL counts towards [events] max_mb: it is kept small
        # ... by this connection's own cut after each write (write_pending), and by housekeeping; not by
        # SQLite's checkpoint at commit, which would copy back on the event loop whatever WAL another
        # connection left (a rewrite of the text index: a hundred megabytes, a quarter of a second).
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(SCHEMA)
        self._add_typed_columns()
        self._search_low: int | None = None  # None: no FTS5 in this SQLite; every search is a LIKE
        self._add_search_index()

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
        return [(name, kind) for name, kind in TYPED_COLUMNS if name not in have]

    def _has_search_index(self) -> bool:
        return self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'events_fts_state'").fetchone() is not None

    def _add_search_index(self) -> None:
        """Create the text index (empty for the existing events: ``build_search_index`` fills it in steps)."""
        if not self._has_search_index():
            self._db.execute("BEGIN IMMEDIATE")  # other processes opening it wait, then find it made
            try:
                if not self._has_search_index():
                    for statement in FTS_SCHEMA:
                        self._db.execute(statement)
                    newest = self._db.execute("SELECT max(seq) FROM events").fetchone()[0]
                    self._db.execute("INSERT INTO events_fts_state (low) VALUES (?)",
                                     (0 if newest is None else int(newest) + 1,))
            except sqlite3.OperationalError as exc:
                self._db.execute("ROLLBACK")
                if "fts5" in str(exc):  # an SQLite built without FTS5: searches read the table
                    return
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._search_low = int(self._db.execute("SELECT low FROM events_fts_state").fetchone()[0])

    @property
    def search_index_complete(self) -> bool:
        """Whether every stored event is in the text index (a store of an earlier release fills it in steps)."""
        return self._search_low is None or self._search_low == 0

    def build_search_index(self, rows: int = 20_000, *, busy_ms: int | None = None) -> bool:
        """Add up to *rows* more of the older events to the text index, newest first; True when complete.

        One short transaction per call (a few tenths of a second for 20,000
        events), so a window can call it while idle and a large store of an
        earlier release becomes fully searchable without one long wait.  With
        *busy_ms*, wait at most that long for another writer (then
        ``sqlite3.OperationalError``, "database is locked": try again later).
        """
        if self._search_low is None or self._search_low == 0:
            return True
        if busy_ms is not None:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        finally:
            if busy_ms is not None:
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            low = int(self._db.execute("SELECT low FROM events_fts_state").fetchone()[0])
            first = self._db.execute("SELECT min(seq) FROM events").fetchone()[0]
            if low and first is not None and int(first) < low:
                start = max(low - rows, int(first))
                self._db.execute(
                    f"INSERT INTO events_fts (rowid, {FTS_COLUMNS}) SELECT seq, {FTS_COLUMNS} FROM events "
                    "WHERE seq >= ? AND seq < ?", (start, low))
                # Nothing is ever stored below the oldest event (seq only grows): from there on it is complete.
                low = 0 if start == int(first) else start
            else:
                low = 0
            self._db.execute("UPDATE events_fts_state SET low = ?", (low,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._search_low = low
        return low == 0

    @property
    def closed(self) -> bool:
        return self._writer.closed

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, once the events waiting to be written are written: every read sees every event
        this process emitted before it (the Events tab reads its live rows back from here); while another
        connection holds the lock, those wait for their retry (:meth:`waiting`)."""
        if self._writer.writable_now():
            self._writer.write()
        return self._conn

    def close(self) -> None:
        self._writer.close()
        self._conn.close()

    def append(self, event: Event) -> int:
        """Store *event* now (after any still waiting); its seq."""
        return self._writer.insert_now(to_row(event))

    def __call__(self, event: Event) -> None:
        """The bus's sink: on a running event loop, events are written in batches and never wait for the
        lock (:mod:`pop3gui.core.events.writer`).  A process killed in that moment loses those events
        from the store, not from the log file.  Without a running loop (a command that emits once) the
        event is written at once."""
        self._writer.add(to_row(event))

    def waiting(self) -> int:
        """Events emitted and not written yet (the lock was taken; they are written shortly)."""
        return self._writer.waiting()

    def write_pending(self, *, block: bool | None = None) -> None:
        """Write the events waiting now (on a running loop: unless the lock is taken; see the writer)."""
        self._writer.write(block=block)

    def count(self, upto: int | None = None) -> int:
        """Events in the store; with *upto*, those up to that seq (what a reader has seen of it)."""
        if upto is None:
            return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(self._db.execute("SELECT count(*) FROM events WHERE seq <= ?", (upto,)).fetchone()[0])

    def count_after(self, seq: int, upto: int | None = None) -> int:
        """Events stored after *seq* (and up to *upto*, when given): a primary-key range."""
        if upto is None:
            return int(self._db.execute("SELECT count(*) FROM events WHERE seq > ?", (seq,)).fetchone()[0])
        return int(self._db.execute("SELECT count(*) FROM events WHERE seq > ? AND seq <= ?",
                                    (seq, upto)).fetchone()[0])

    def passes(self, flt: EventFilter, seq: int) -> bool:
        """Whether the stored event *seq* passes *flt* (one look at that row)."""
        events, _ = self.page(flt, before_seq=seq + 1, after_seq=seq - 1, limit=1)
        return bool(events)

    def accounts(self) -> list[str]:
        """Every account named by a stored event, sorted; one index seek per account, not a scan."""
        rows = self._db.execute(
            "WITH RECURSIVE a(name) AS (SELECT min(account) FROM events WHERE account > '' "
            "UNION ALL SELECT (SELECT min(account) FROM events WHERE account > a.name) FROM a "
            "WHERE a.name IS NOT NULL) SELECT name FROM a WHERE name IS NOT NULL").fetchall()
        return [str(r[0]) for r in rows]

    def since(self, seq: int, limit: int = 10_000) -> list[Event]:
        """Events after ``seq`` in order: how a follower or a live view catches up."""
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [from_row(r) for r in rows]

    def latest(self, limit: int) -> list[Event]:
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM events ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [from_row(r) for r in reversed(rows)]

    def query(self, *, account: str | None = None, min_severity: Severity | None = None,
              since: datetime | None = None, grep: str | None = None, after_seq: int = 0,
              limit: int | None = None) -> list[Event]:
        """The events that pass every filter given, oldest first; with *limit*, the newest *limit* of them.

        *account* is an exact account name; *min_severity* keeps that level and
        above; *since* keeps events at or after that moment (a naive time is
        local time); *grep* keeps events whose text, cause or fix contains it,
        ignoring case; *after_seq* keeps events stored after that one (how a
        follower catches up).  The filtering is done by SQLite, on indexes
        where one applies (the text index for *grep*), so a store of millions
        of events answers at once.
        """
        flt = EventFilter(min_severity=min_severity, account=account, text=grep or "", fields=GREP_FIELDS,
                          since=since)
        if limit is not None:
            found: list[Event] = []
            before: int | None = None
            while len(found) < limit:
                events, before = self.page(flt, before_seq=before, after_seq=after_seq, limit=limit - len(found))
                found.extend(events)
                if before is None:
                    break
            return found[::-1]
        where, params = self._where(flt, after_seq + 1, NO_SEQ)
        rows = self._db.execute(f"SELECT {COLUMNS} FROM events WHERE {where} ORDER BY seq", params).fetchall()
        return [from_row(r) for r in rows]

    def matching(self, flt: EventFilter, batch: int = 1000) -> Iterator[Event]:
        """Every event that passes *flt*, oldest first, read in batches (what an export writes)."""
        after = 0
        while True:
            where, params = self._where(flt, after + 1, NO_SEQ)
            rows = self._db.execute(f"SELECT {COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT ?",
                                    [*params, batch]).fetchall()
            for row in rows:
                yield from_row(row)
            if len(rows) < batch:
                return
            after = int(str(rows[-1][0]))

    def page(self, flt: EventFilter, *, before_seq: int | None = None, after_seq: int = 0, limit: int = 200,
             scan: int = SEARCH_SCAN_ROWS) -> tuple[list[Event], int | None]:
        """The newest *limit* events before *before_seq* (and after *after_seq*) that pass *flt*, newest first,
        and the seq the next older page starts before (None: nothing older passes).

        A search the text index cannot answer (under 3 characters, or older events
        of a store still being indexed) reads at most *scan* events per call, so
        its page can come back short with a cursor: ask again to read on.
        """
        top = self._db.execute("SELECT max(seq) FROM events").fetchone()[0]
        if top is None or limit <= 0:
            return [], None
        hi = min(before_seq if before_seq is not None else NO_SEQ, int(top) + 1)
        lo = after_seq + 1
        found: list[Event] = []
        budget = scan
        while len(found) < limit and hi > lo:
            need = limit - len(found)
            start, use_index = lo, False
            if flt.text:
                low = self._search_low
                if low is not None and indexable(flt.text) and hi > low:
                    start, use_index = max(lo, low), True
                else:
                    start = max(lo, hi - budget)
                    budget -= hi - start
            rows = self._select(flt, start, hi, need, use_index)
            found.extend(rows)
            if len(rows) == need:
                return found, rows[-1].seq
            hi = start
            if flt.text and not use_index and budget <= 0:
                break
        first = self._db.execute("SELECT min(seq) FROM events").fetchone()[0]
        more = hi > lo and first is not None and hi > int(first)
        return found, hi if more else None

    def count_at_least(self, flt: EventFilter, cap: int, scan: int = SEARCH_SCAN_ROWS,
                       upto: int | None = None) -> tuple[int, bool]:
        """How many events pass *flt* (those up to the seq *upto*, when given), counting to *cap* at most;
        and whether that is exact.

        Not exact either when *cap* was reached or when a search the text index
        cannot answer would have to read the whole store (then it is a lower bound).
        """
        hi = NO_SEQ if upto is None else upto + 1
        if not flt.text:
            where, params = self._where(flt, 1, hi)
            n = int(self._db.execute(f"SELECT count(*) FROM (SELECT 1 FROM events WHERE {where} LIMIT ?)",
                                     [*params, cap]).fetchone()[0])
            return n, n < cap
        low = self._search_low
        if low is None or not indexable(flt.text):
            events, more = self.page(flt, before_seq=hi, limit=cap, scan=scan)
            return len(events), more is None and len(events) < cap
        fts, fts_params = search_match(flt)
        where, params = self._where(replace(flt, text=""), max(low, 1), hi)
        n = int(self._db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {self._search_join(flt)[0]} "
            f"WHERE {fts} AND {where} LIMIT ?)", [*fts_params, *params, cap]).fetchone()[0])
        if low > 1 and n < cap:  # the part not indexed yet: a bounded look
            events, more = self.page(flt, before_seq=min(low, hi), limit=cap - n, scan=scan)
            return n + len(events), more is None and n + len(events) < cap
        return n, n < cap

    def _select(self, flt: EventFilter, lo: int, hi: int, limit: int, use_index: bool) -> list[Event]:
        """The newest *limit* events with lo <= seq < hi that pass *flt*, newest first."""
        if use_index:
            fts, fts_params = search_match(flt)
            where, params = self._where(replace(flt, text=""), lo, hi)
            tables, key = self._search_join(flt)
            rows = self._db.execute(
                f"SELECT {EVENT_COLUMNS} FROM {tables} WHERE {fts} AND {key} >= ? AND {key} < ? AND {where} "
                f"ORDER BY {key} DESC LIMIT ?", [*fts_params, lo, hi, *params, limit]).fetchall()
            return [from_row(r) for r in rows]
        levels = flt.levels()
        if levels is None:
            where, params = self._where(flt, lo, hi)
            rows = self._db.execute(f"SELECT {COLUMNS} FROM events WHERE {where} ORDER BY seq DESC LIMIT ?",
                                    [*params, limit]).fetchall()
            return [from_row(r) for r in rows]
        # One index range per level, newest first, merged: never a sort of every event of those levels.
        where, params = self._where(replace(flt, min_severity=None), lo, hi)
        parts, all_params = [], []
        for level in levels:
            parts.append(f"SELECT seq FROM (SELECT seq FROM events WHERE severity = ? AND {where} "
                         "ORDER BY seq DESC LIMIT ?)")
            all_params.extend([level, *params, limit])
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM events WHERE seq IN (SELECT seq FROM ({' UNION ALL '.join(parts)}) "
            "ORDER BY seq DESC LIMIT ?) ORDER BY seq DESC", [*all_params, limit]).fetchall()
        return [from_row(r) for r in rows]

    def _search_join(self, flt: EventFilter) -> tuple[str, str]:
        """The tables of a search on the text index, in the order SQLite is to read them, and the column
        whose order they give.

        Usually every match of the text, newest first, each checked against the
        other filters.  An account with few events (none: one offered because it
        is configured) is read the other way: its events, each looked up in the
        index, where a common word would have SQLite read all of its matches.
        """
        if flt.account is not None and int(self._db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE account = ? LIMIT ?)",
                (flt.account, FEW_EVENTS + 1)).fetchone()[0]) <= FEW_EVENTS:
            return ("events INDEXED BY events_account CROSS JOIN events_fts ON events_fts.rowid = events.seq",
                    "events.seq")
        return "events_fts CROSS JOIN events ON events.seq = events_fts.rowid", "events_fts.rowid"

    def _where(self, flt: EventFilter, lo: int, hi: int) -> tuple[str, list[object]]:
        return where(flt, lo, hi, self._search_low)

    def all(self) -> Iterator[Event]:
        for row in self._db.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq"):
            yield from_row(row)


