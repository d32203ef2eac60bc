"""Event retention: the event store keeps ``[events] keep_days`` of history and stays under ``max_mb``.

The pruning is done in bounded steps (:meth:`EventRetention.step`, once per
cycle) on a connection of its own, meant for a worker thread
(``asyncio.to_thread``): the rows to remove are found by a read, which never
waits in WAL mode, and deleted in short transactions of :attr:`batch_rows`
rows with a pause after each, so the runner's own connection, which appends
events on the event loop, waits for the lock a few milliseconds at most.
Deleting rows of ``events`` also keeps the store's full-text index in step
(its triggers).  The pages given up are handed back to the disk with
incremental vacuuming (:mod:`pop3gui.core.state.sqlite_space`).
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pop3gui.core.events.store import WAL_BYTES
from pop3gui.core.state.sqlite_space import (
    convert_to_incremental,
    pause_after,
    reclaim,
    space,
    trim_wal,
    upkeep_connection,
)

__all__ = ["EventRetention", "PruneResult"]

_MB = 1024 * 1024
TARGET_SHARE = 0.8
"""Over the cap, the oldest events go until the store is this share of it: the next ones have room, so the
oldest are not removed a few at a time after every cycle.  The headroom also holds what the full-text index
keeps of deleted events until it is optimized (:meth:`EventRetention._optimize_index`).  So that such leftovers
never make retention remove most of the history, one step removes at most :data:`MAX_SHARE_PER_STEP` of the
events for the size cap."""

MAX_SHARE_PER_STEP = 0.1
HEADROOM_BYTES = 256 * 1024
"""Kept free under the cap besides the WAL's share: the events a cycle writes after its step, and the last
transaction a WAL takes past its limit before it is cut back (a soak saw the store 20 KB over its cap)."""


@dataclass(frozen=True)
class PruneResult:
    """What one step did, and where the store stands after it."""

    expired: int = 0  # removed for being older than keep_days
    over_cap: int = 0  # removed, oldest first, to keep the store under max_mb
    pages_freed: int = 0  # given back to the file system
    remaining: int = 0  # events left in the store
    file_bytes: int = 0  # the store's file and WAL after the step
    live_bytes: int = 0
    backlog: bool = False  # more is due than one step removes: the next step goes on
    converted: bool = False  # the store was given incremental vacuuming in this step
    cannot_shrink: bool = False  # an older store, too big to convert yet: its file keeps its size

    @property
    def removed(self) -> int:
        return self.expired + self.over_cap


class EventRetention:
    """Prunes one event store file; each :meth:`step` opens and closes its own connection."""

    def __init__(self, path: Path, *, step_rows: int = 20_000, batch_rows: int = 200,
                 vacuum_pages: int = 65_536) -> None:
        self.path = path
        self.step_rows = step_rows  # at most this many events are removed by one step
        self.batch_rows = batch_rows  # per write transaction
        self.vacuum_pages = vacuum_pages  # at most this many pages are given back by one step

    def step(self, keep_days: int, max_mb: int, now: datetime | None = None) -> PruneResult:
        """Remove what is due, up to the step's bounds, and give the space back; blocking (run it in a thread)."""
        if not self.path.exists():
            return PruneResult()
        db = upkeep_connection(self.path, WAL_BYTES)
        try:
            return self._step(db, keep_days, max_mb, now or datetime.now(timezone.utc))
        finally:
            db.close()

    def _step(self, db: sqlite3.Connection, keep_days: int, max_mb: int, now: datetime) -> PruneResult:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone():
            return PruneResult()
        budget = self.step_rows
        expired = 0
        if keep_days > 0:
            cutoff = (now.astimezone(timezone.utc) - timedelta(days=keep_days)).isoformat()
            # The time index finds the oldest events first; times nearly follow seq.
            expired = self._delete(db, "SELECT seq FROM events INDEXED BY events_time WHERE time < ? "
                                   "ORDER BY time LIMIT ?", (cutoff,), budget)
            budget -= expired
        over_cap = 0
        if max_mb > 0 and budget > 0 and (target := self._rows_over(db, max_mb)):
            over_cap = self._delete(db, "SELECT seq FROM events ORDER BY seq LIMIT ?", (), min(budget, target))
            budget -= over_cap
        remaining = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        # Not after every routine expiry (a store between its target and its cap would rewrite its whole
        # index after every cycle): the leftovers of deleted events then count towards the cap, and the
        # removal for the cap, when it comes, cleans them up.
        if over_cap or (expired and expired * 4 >= remaining):
            self._optimize_index(db)
        converted = False
        before = space(db, self.path)
        if not before.incremental:
            converted = convert_to_incremental(db, self.path)
        freed = reclaim(db, self.vacuum_pages)
        trim_wal(db, self.path, WAL_BYTES)
        after = space(db, self.path)
        remaining = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        # More is due when expiry used the whole step (older events wait), or when the store is still over its
        # cap; removal for the cap that stopped short of its target but under the cap is done until next time.
        backlog = budget <= 0 and (expired >= self.step_rows or (max_mb > 0 and self._rows_over(db, max_mb) > 0))
        return PruneResult(expired=expired, over_cap=over_cap, pages_freed=freed, remaining=remaining,
                           file_bytes=after.file_bytes, live_bytes=after.live_bytes, backlog=backlog,
                           converted=converted, cannot_shrink=not after.incremental)

    def _optimize_index(self, db: sqlite3.Connection) -> None:
        """Rewrite the full-text index without what deleted events left in it, in one transaction.

        A full-text index records a deletion as more data until its segments
        are merged into one.  This runs only when it pays: events went for the
        size cap, or a quarter of the store or more expired at once (a backlog).
        It is one transaction, never an incremental merge: an incremental
        merge from this connection, while the runner's connection adds
        events between its transactions, damaged the index (SQLite 3.40).
        """
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='events_fts'").fetchone():
            db.execute("INSERT INTO events_fts(events_fts) VALUES ('optimize')")

    def _rows_over(self, db: sqlite3.Connection, max_mb: int) -> int:
        """How many of the oldest events to remove to bring the store down to its target share of the cap.

        The cap is for the store's files: the database (its pages in use; free
        ones are given back) and its write-ahead log, which is kept to WAL_BYTES,
        with HEADROOM_BYTES to spare.
        """
        live = space(db, self.path).live_bytes
        cap = max(max_mb * _MB - WAL_BYTES - HEADROOM_BYTES, max_mb * _MB // 2)
        if live <= cap:
            return 0
        count = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        if count == 0:
            return 0
        per_row = live / count  # indexes included: what one event costs the store
        return min(math.ceil(count * MAX_SHARE_PER_STEP), math.ceil((live - cap * TARGET_SHARE) / per_row))

    def _delete(self, db: sqlite3.Connection, select: str, args: tuple[object, ...], limit: int) -> int:
        """Delete up to *limit* rows found by *select* (its last parameter is a row count), a batch at a time."""
        removed = 0
        while removed < limit:
            want = min(self.batch_rows, limit - removed)
            seqs = [(int(row[0]),) for row in db.execute(select, (*args, want))]  # a read: never waits
            if not seqs:
                break
            started = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM events WHERE seq = ?", seqs)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            removed += len(seqs)
            pause_after(started)
            if len(seqs) < want:
                break
        return removed
