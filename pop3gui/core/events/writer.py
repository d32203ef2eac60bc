"""How events reach the event store's file: in batches on a running loop, never waiting there for the lock.

The runner emits a few events per message; one transaction each costs about
twice the CPU of a batch (the text index writes a segment per transaction),
so on a running event loop they wait up to WRITE_DELAY_S, or until
WRITE_BATCH wait, or until anything reads the store.  The loop is the
window's and the tray's Qt loop too, so it never waits for the lock:
housekeeping's rewrite of the text index holds it for a second or more on a
large store.  A write there waits LOOP_PATIENCE_MS at most; the events then
stay waiting, in order, and are written RETRY_S later.  After its writes the
connection cuts the WAL back (it counts towards ``[events] max_mb``), on the
loop only while that is quick to copy back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from pop3gui.core.events.schema import INSERT
from pop3gui.core.state.sqlite_space import trim_wal

__all__ = ["EventWriter", "WAL_BYTES", "WRITE_BATCH", "WRITE_DELAY_S"]

BUSY_TIMEOUT_MS = 30_000  # the connection's patience off the loop (a command, closing)
WRITE_DELAY_S = 0.05  # events emitted on a running event loop are written together, this long after the first
WRITE_BATCH = 200  # ... or as soon as this many wait
WAL_BYTES = 1024 * 1024  # the write-ahead log is checkpointed, and cut back, at this size
LOOP_PATIENCE_MS = 10  # on an event loop, a write waits this long for the lock, then tries again later ...
RETRY_S = 0.2  # ... this much later
LOOP_CUT_MAX = 16 * 1024 * 1024  # a bigger WAL is not copied back on the loop (~30 ms here): housekeeping does it
MAX_WAITING = 50_000  # events kept in memory for a later write at most; past that the write waits its turn
_log = logging.getLogger(__name__)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class EventWriter:
    """Writes event rows on the store's connection; see the module's docstring for when."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.closed = False
        self._unwritten: list[tuple[object, ...]] = []  # rows emitted, not yet written
        self._write_soon: asyncio.TimerHandle | None = None
        self._retrying = False  # the last write found the lock taken; a retry is due

    def waiting(self) -> int:
        """Rows emitted and not written yet."""
        return len(self._unwritten)

    def writable_now(self) -> bool:
        """Rows wait, and no retry is due (after a taken lock, a read does not try again before the retry)."""
        return bool(self._unwritten) and not self._retrying

    def add(self, row: tuple[object, ...]) -> None:
        """Queue one row: written with the next batch on a running loop, at once without one."""
        self._unwritten.append(row)
        if self._retrying:  # the lock is taken: the retry writes this one too
            return
        if len(self._unwritten) >= WRITE_BATCH:
            self.write()
            return
        if self._write_soon is None:
            loop = _running_loop()
            if loop is None:
                self.write()
                return
            self._write_soon = loop.call_later(WRITE_DELAY_S, self.write)

    def insert_now(self, row: tuple[object, ...]) -> int:
        """Write *row* now, after any still waiting, whatever the wait for the lock; its seq."""
        self.write(block=True)
        own = not self._conn.in_transaction
        cur = self._conn.execute(INSERT, row)
        if own:
            self._cut_wal()
        return int(cur.lastrowid or 0)

    def write(self, *, block: bool | None = None) -> None:
        """Write the rows waiting, in one transaction; a failure (full disk) is logged, as the bus does.

        *block* None: wait for the lock off a running loop, or when more than
        MAX_WAITING rows wait; on the loop, give up after LOOP_PATIENCE_MS and retry.
        """
        if self._write_soon is not None:
            self._write_soon.cancel()
            self._write_soon = None
        self._retrying = False
        rows, self._unwritten = self._unwritten, []
        if not rows or self.closed:
            return
        loop = _running_loop()
        if block is None:
            block = loop is None or len(rows) > MAX_WAITING
        conn = self._conn
        own = not conn.in_transaction
        try:
            if own:
                self._begin(block)
            conn.executemany(INSERT, rows)
            if own:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            if not block and loop is not None and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                self._unwritten[:0] = rows  # before any emitted meanwhile
                self._retrying = True
                self._write_soon = loop.call_later(RETRY_S, self.write)
                return
            _log.exception("could not store %d event(s) in %s", len(rows), self.path)
            return
        if own:
            self._cut_wal()

    def close(self) -> None:
        """Write what waits, waiting for the lock as long as it takes; nothing is written after."""
        if not self.closed:
            self.write(block=True)
        self.closed = True

    def _begin(self, block: bool) -> None:
        """BEGIN IMMEDIATE, waiting the connection's busy timeout for the lock, or LOOP_PATIENCE_MS."""
        if block:
            self._conn.execute("BEGIN IMMEDIATE")
            return
        self._conn.execute(f"PRAGMA busy_timeout={LOOP_PATIENCE_MS}")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _cut_wal(self) -> None:
        """After a write: a merge of the text index inside it may have grown the WAL; cut it, never waiting
        (and, on an event loop, only when it is small enough to copy back at once)."""
        trim_wal(self._conn, self.path, WAL_BYTES, attempts=1, patience_ms=0,
                 at_most=None if _running_loop() is None else LOOP_CUT_MAX)
