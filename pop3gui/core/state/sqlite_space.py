"""Giving the pages of deleted rows back to the disk, a little at a time, for the stores that prune.

A deleted row frees its pages inside the database file; the file only shrinks
when the database has ``auto_vacuum = INCREMENTAL`` and something runs
``PRAGMA incremental_vacuum``.  Each call here does a bounded amount in short
write transactions with pauses between them, so the runner's own connection
(on the event loop) never waits long for the lock.  The functions run in a
worker thread on a connection of their own (:func:`upkeep_connection`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CONVERT_LIMIT_BYTES", "WAL_LIMIT_BYTES", "Space", "convert_to_incremental", "pause_after",
           "reclaim", "space", "trim_wal", "upkeep_connection", "use_wal_limit"]

CONVERT_LIMIT_BYTES = 16 * 1024 * 1024
"""A store without auto_vacuum is converted (one VACUUM) only while its content is at most this big: the VACUUM
holds the write lock for its whole length, about 0.1 s for this size, and runs between cycles."""

VACUUM_CHUNK_PAGES = 128  # one short write transaction: about half a megabyte moved at the end of the file
_INCREMENTAL = 2


@dataclass(frozen=True)
class Space:
    """How big a database is: its file (and WAL) on disk, and the part its rows use."""

    file_bytes: int
    live_bytes: int
    free_pages: int
    incremental: bool  # auto_vacuum = INCREMENTAL: freed pages can be given back


WAL_LIMIT_BYTES = 4 * 1024 * 1024


def use_wal_limit(db: sqlite3.Connection, limit: int = WAL_LIMIT_BYTES) -> None:
    """Keep this connection's WAL near *limit* bytes: checkpoint once it holds that much, and cut the file
    back to that size after a checkpoint (SQLite's defaults: 1,000 pages, and never cut back)."""
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    db.execute(f"PRAGMA wal_autocheckpoint={max(1, limit // page_size)}")
    db.execute(f"PRAGMA journal_size_limit={int(limit)}")


def upkeep_connection(path: Path, wal_limit: int = WAL_LIMIT_BYTES) -> sqlite3.Connection:
    """A connection of the worker thread's own, in autocommit mode, waiting up to 30 s for the lock."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("PRAGMA synchronous=NORMAL")
    use_wal_limit(db, wal_limit)
    return db


def space(db: sqlite3.Connection, path: Path) -> Space:
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    mode = int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
    on_disk = 0
    for name in (path, path.with_name(path.name + "-wal")):
        try:
            on_disk += name.stat().st_size
        except OSError:
            pass
    return Space(on_disk, (pages - free) * page_size, free, mode == _INCREMENTAL)


def pause_after(started: float) -> None:
    """Leave the lock free twice as long as it was just held (and 5 ms at least), so other writers get their turn.

    A writer that found the lock taken sleeps in SQLite's busy handler (1, 2,
    5, 10, 15 ms ...) before it tries again; a gap longer than those sleeps
    is one it does not miss.
    """
    time.sleep(max(0.005, 2 * (time.perf_counter() - started)))


def reclaim(db: sqlite3.Connection, max_pages: int) -> int:
    """Give up to *max_pages* free pages back to the file system; the number given back.

    Does nothing for a database without incremental auto_vacuum (its free
    pages are reused by new rows instead).  The WAL is then checkpointed
    without waiting for anyone, which is when the file itself shrinks.
    """
    if int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) != _INCREMENTAL:
        return 0
    given = 0
    while given < max_pages:
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if free == 0:
            break
        chunk = min(free, VACUUM_CHUNK_PAGES, max_pages - given)
        started = time.perf_counter()
        # Run to completion: a plain execute() steps the pragma once, and each step frees one page only.
        db.executescript(f"PRAGMA incremental_vacuum({chunk});")
        given += chunk
        pause_after(started)
    if given:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    return given


def trim_wal(db: sqlite3.Connection, path: Path, limit: int = WAL_LIMIT_BYTES, *, attempts: int = 5,
             patience_ms: int = 20, at_most: int | None = None) -> bool:
    """Cut a WAL grown past *limit* (a large delete, rebuild or merge) back to nothing; True when it is within *limit*.

    A TRUNCATE checkpoint keeps other writers waiting while it waits for
    readers, so each attempt has a short patience (*patience_ms*), with a
    pause of 50 ms between attempts that lets the others through (a reader
    that was in the way has usually finished by then); when every attempt
    finds a reader, the WAL keeps its size until a later try.  The event
    loop's own writer makes one attempt with no patience: SQLite only
    shortens the WAL at the next write after a complete checkpoint, which may
    be a cycle away, and the loop must never wait.  The connection's own
    busy timeout is restored afterwards.  A WAL bigger than *at_most* is left
    alone (False): copying it back takes a while, which the loop leaves to
    housekeeping's thread.
    """
    wal = path.with_name(path.name + "-wal")
    patience = int(db.execute("PRAGMA busy_timeout").fetchone()[0])
    for attempt in range(attempts):
        try:
            size = wal.stat().st_size
        except OSError:
            return True
        if size <= limit:
            return True
        if at_most is not None and size > at_most:
            return False
        if attempt:
            time.sleep(0.05)
        db.execute(f"PRAGMA busy_timeout={int(patience_ms)}")
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:
            pass  # busy: the next attempt, or a later try, goes on
        finally:
            db.execute(f"PRAGMA busy_timeout={patience}")
    try:
        return wal.stat().st_size <= limit
    except OSError:
        return True


def convert_to_incremental(db: sqlite3.Connection, path: Path) -> bool:
    """Give a database made without auto_vacuum incremental vacuuming, once, while that is quick.

    True when it has it now (or had it already); False when its content is
    still too big to rebuild between two cycles without holding up the runner:
    it is tried again after later pruning made it smaller.
    """
    now = space(db, path)
    if now.incremental:
        return True
    if now.live_bytes > CONVERT_LIMIT_BYTES:
        return False
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("VACUUM")
    trim_wal(db, path)  # the rebuilt file went through the WAL; a reader in the way is waited for briefly only
    return int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) == _INCREMENTAL
