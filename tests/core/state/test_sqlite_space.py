"""A WAL grown past its limit is cut back, waiting a little for a reader that is in the way."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from pop3gui.core.state.sqlite_space import convert_to_incremental, space, trim_wal, use_wal_limit

LIMIT = 256 * 1024


def grown_wal(path: Path) -> sqlite3.Connection:
    """A database whose WAL holds about 2 MB, well past LIMIT."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # nothing is checkpointed by itself here
    db.execute("CREATE TABLE t (x BLOB)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,) for _ in range(2000)])
    db.execute("COMMIT")
    assert wal_size(path) > 4 * LIMIT
    return db


def wal_size(path: Path) -> int:
    return path.with_name(path.name + "-wal").stat().st_size


def read_for(path: Path, seconds: float, started: threading.Event) -> threading.Thread:
    """Another connection inside a read transaction for *seconds*: the WAL cannot be truncated meanwhile."""
    def reader() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM t").fetchone()
        started.set()
        threading.Event().wait(seconds)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=reader)
    thread.start()
    return thread


def test_a_wal_past_its_limit_is_cut_back(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    assert trim_wal(db, path, LIMIT)
    assert wal_size(path) == 0
    db.close()


def test_a_reader_in_the_way_is_waited_for_a_little(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    started = threading.Event()
    thread = read_for(path, 0.12, started)
    started.wait(5)
    assert trim_wal(db, path, LIMIT)  # a later attempt finds the reader gone
    assert wal_size(path) == 0
    thread.join()
    db.close()


def test_one_attempt_leaves_the_wal_to_a_later_step(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    started = threading.Event()
    thread = read_for(path, 0.5, started)
    started.wait(5)
    assert not trim_wal(db, path, LIMIT, attempts=1)
    assert wal_size(path) > LIMIT
    thread.join()
    db.close()


def test_the_writer_cuts_its_own_grown_wal_at_once_and_keeps_its_patience(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    db.execute("PRAGMA busy_timeout=30000")
    assert trim_wal(db, path, LIMIT, attempts=1, patience_ms=0)
    assert wal_size(path) == 0
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    db.close()


def test_the_writer_never_waits_for_a_reader_in_the_way(tmp_path: Path) -> None:
    """On the event loop's connection: a reader leaves the WAL to a later write, at once, not in 30 s."""
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    db.execute("PRAGMA busy_timeout=30000")
    started = threading.Event()
    thread = read_for(path, 0.5, started)
    started.wait(5)
    began = time.monotonic()
    assert not trim_wal(db, path, LIMIT, attempts=1, patience_ms=0)
    assert time.monotonic() - began < 0.3
    assert wal_size(path) > LIMIT
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    thread.join()
    assert trim_wal(db, path, LIMIT, attempts=1, patience_ms=0)  # the next write's turn
    assert wal_size(path) == 0
    db.close()


def test_a_wal_within_its_limit_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    db = grown_wal(path)
    before = wal_size(path)
    assert trim_wal(db, path, 8 * before, attempts=1, patience_ms=0)
    assert wal_size(path) == before
    db.close()


def test_use_wal_limit_sets_the_checkpoint_and_the_cut_back_size(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "t.sqlite3")
    use_wal_limit(db, 1024 * 1024)
    page = int(db.execute("PRAGMA page_size").fetchone()[0])
    assert int(db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 1024 * 1024 // page
    assert int(db.execute("PRAGMA journal_size_limit").fetchone()[0]) == 1024 * 1024
    db.close()


def test_converting_a_store_never_holds_writers_for_a_reader(tmp_path: Path) -> None:
    """The conversion's WAL cut has a short patience: a TRUNCATE checkpoint waiting on a reader for the
    connection's 30 s would keep every writer (the event loop's) waiting as long."""
    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x BLOB)")
    db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,) for _ in range(6000)])
    db.execute("PRAGMA busy_timeout=30000")
    assert not space(db, path).incremental
    started = threading.Event()
    thread = read_for(path, 3.0, started)
    started.wait(5)
    began = time.monotonic()
    assert convert_to_incremental(db, path)
    assert time.monotonic() - began < 2.0  # the reader is still there: the WAL waits for a later step
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    thread.join()
    db.close()
