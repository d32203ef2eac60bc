"""Events emitted on a running loop are written in batches, and never lost to a reader or a close."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from pop3gui.core.events import store as store_module
from pop3gui.core.events import writer as writer_module
from pop3gui.core.events.model import Event, EventBus, EventId, Severity
from pop3gui.core.events.store import WRITE_BATCH, WRITE_DELAY_S, EventStore
from pop3gui.core.state.sqlite_space import trim_wal


def make(n: int) -> Event:
    return Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event {n}", account="alice")


def on_disk(path: Path) -> list[str]:
    """What another process would read: a connection of its own."""
    with sqlite3.connect(path) as db:
        return [str(r[0]) for r in db.execute("SELECT text FROM events ORDER BY seq")]


def test_without_a_running_loop_each_event_is_written_at_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    store(make(1))
    assert on_disk(store.path) == ["event 1"]
    store.close()


def test_on_a_loop_events_wait_briefly_then_go_in_one_write(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")

    async def scenario() -> tuple[list[str], list[str]]:
        for n in range(3):
            store(make(n))
        waiting = on_disk(store.path)
        await asyncio.sleep(WRITE_DELAY_S * 4)
        return waiting, on_disk(store.path)

    waiting, written = asyncio.run(scenario())
    assert waiting == []
    assert written == ["event 0", "event 1", "event 2"]
    store.close()


def test_a_read_through_the_store_sees_the_waiting_events(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    bus = EventBus()
    bus.subscribe(store)

    async def scenario() -> list[str]:
        for n in range(3):
            bus.emit(make(n))
        return [e.text for e in store.latest(10)]

    assert asyncio.run(scenario()) == ["event 0", "event 1", "event 2"]
    store.close()


def test_a_full_batch_is_written_without_waiting(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")

    async def scenario() -> int:
        for n in range(WRITE_BATCH):
            store(make(n))
        return len(on_disk(store.path))

    assert asyncio.run(scenario()) == WRITE_BATCH
    store.close()


def test_close_writes_what_waits_and_an_appended_event_keeps_its_place(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")

    async def scenario() -> int:
        store(make(1))
        seq = store.append(make(2))  # written at once, after the one waiting
        store(make(3))
        return seq

    seq = asyncio.run(scenario())  # the loop is gone with event 3 still waiting
    store.close()
    assert on_disk(store.path) == ["event 1", "event 2", "event 3"]
    assert seq == 2


def test_a_failed_write_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    monkeypatch.setattr(writer_module, "INSERT", "INSERT INTO no_such_table VALUES (?)")

    async def scenario() -> None:
        store(make(1))
        await asyncio.sleep(WRITE_DELAY_S * 4)

    with caplog.at_level(logging.ERROR, logger="pop3gui.core.events.writer"):
        asyncio.run(scenario())
    assert "could not store 1 event(s)" in caplog.text
    monkeypatch.undo()
    store(make(2))  # the store still works afterwards
    assert on_disk(store.path) == ["event 2"]
    store.close()


def test_a_large_write_leaves_the_wal_within_its_limit(tmp_path: Path) -> None:
    """A batch of large events (or a merge of the text index inside one) grows the WAL past WAL_BYTES;
    the store cuts it back right after, not at some later write: it counts towards [events] max_mb."""
    store = EventStore(tmp_path / "events.sqlite3")
    wal = store.path.with_name(store.path.name + "-wal")
    grown: list[int] = []

    async def scenario() -> None:
        for n in range(WRITE_BATCH):  # the last one writes the batch
            store(Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event {n} " + "x" * 8000))
        grown.append(wal.stat().st_size)

    asyncio.run(scenario())
    assert len(on_disk(store.path)) == WRITE_BATCH
    assert grown[0] <= store_module.WAL_BYTES
    store.close()


class HeldLock:
    """Another connection holding the store's write lock (housekeeping rewriting the text index)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.db.execute("COMMIT")
        self.db.close()


def test_on_a_loop_a_taken_lock_is_not_waited_for_and_the_events_follow_in_order(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    store(make(0))  # no loop: written at once
    held = HeldLock(store.path)

    async def scenario() -> tuple[float, list[str], int, list[str]]:
        for n in range(1, WRITE_BATCH + 5):  # a full batch tries to write at once
            store(make(n))
        loop = asyncio.get_running_loop()
        began = loop.time()
        store.write_pending()
        waited = loop.time() - began
        seen = [e.text for e in store.latest(3)]  # a read goes on without the waiting events
        waiting = store.waiting()
        held.release()
        await asyncio.sleep(writer_module.RETRY_S * 3)
        return waited, seen, waiting, on_disk(store.path)

    waited, seen, waiting, written = asyncio.run(scenario())
    assert waited < 1.0  # the lock is given up after LOOP_PATIENCE_MS, not the 30 s busy timeout
    assert seen == ["event 0"]
    assert waiting == WRITE_BATCH + 4
    assert written == [f"event {n}" for n in range(WRITE_BATCH + 5)]
    assert store.waiting() == 0
    store.close()


def test_close_waits_for_a_taken_lock_and_loses_nothing(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    taken = threading.Event()

    def hold_for_a_while() -> None:
        held = HeldLock(store.path)
        taken.set()
        time.sleep(0.3)
        held.release()

    holder = threading.Thread(target=hold_for_a_while)
    holder.start()
    taken.wait(5)

    async def closing() -> int:
        store(make(1))
        store.write_pending()  # the lock is taken: kept for a retry
        waiting = store.waiting()
        store.close()  # the window is closing: this write waits for the lock
        return waiting

    assert asyncio.run(closing()) == 1
    holder.join()
    assert on_disk(store.path) == ["event 1"]


def test_the_loop_leaves_a_wal_another_connection_grew_to_housekeeping(tmp_path: Path) -> None:
    """Housekeeping's rewrite of the text index leaves a WAL of many megabytes: copying it back is a quarter
    of a second on a large store, so the loop's write does not (neither by its own cut nor by SQLite's
    checkpoint at commit); housekeeping's thread does, as its step ends."""
    store = EventStore(tmp_path / "events.sqlite3")
    wal = store.path.with_name(store.path.name + "-wal")
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("PRAGMA wal_autocheckpoint=0")
    other.execute("CREATE TABLE bulk (x BLOB)")
    other.execute("BEGIN IMMEDIATE")
    other.executemany("INSERT INTO bulk VALUES (?)", [(b"x" * 4000,) for _ in range(6000)])
    other.execute("COMMIT")
    grown = wal.stat().st_size
    assert grown > 16 * 1024 * 1024  # more than the loop copies back

    async def on_the_loop() -> None:
        for n in range(3):
            store(make(n))
        store.write_pending()

    asyncio.run(on_the_loop())
    assert on_disk(store.path) == ["event 0", "event 1", "event 2"]
    assert wal.stat().st_size >= grown  # not copied back on the loop
    assert trim_wal(other, store.path, store_module.WAL_BYTES)  # housekeeping's cut
    assert wal.stat().st_size == 0
    other.close()
    store.close()
