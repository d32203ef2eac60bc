"""Event retention on real SQLite files: by age, by size, in bounded steps, with the space given back."""

from __future__ import annotations

import asyncio
import hashlib
import math
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.retention import HEADROOM_BYTES, EventRetention
from pop3gui.core.events.store import WAL_BYTES, EventStore
from pop3gui.core.state.sqlite_space import CONVERT_LIMIT_BYTES

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


def fill(store: EventStore, n: int, at: datetime, *, text: str = "Delivered to alice@contoso.com") -> None:
    """*n* events a second apart from *at*, in one transaction (a long history, quickly)."""
    store._db.execute("BEGIN")
    for i in range(n):
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"{text} #{i}", account="alice",
                           subject=f"Invoice {i}", time=at + timedelta(seconds=i)))
    store._db.execute("COMMIT")


def test_events_older_than_keep_days_go_and_the_rest_stay(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    fill(store, 300, NOW - timedelta(days=91))
    fill(store, 200, NOW - timedelta(days=89), text="recent")
    result = EventRetention(store_path(tmp_path)).step(90, 0, NOW)
    assert (result.expired, result.over_cap, result.remaining) == (300, 0, 200)
    assert store.count() == 200 and all(e.text.startswith("recent") for e in store.all())
    # Searching still works on what is left: the full-text index followed the deletes.
    assert [e.text for e in store.query(grep="recent #199")] == ["recent #199"]
    assert store.query(grep="Delivered to") == []
    assert EventRetention(store_path(tmp_path)).step(0, 0, NOW + timedelta(days=3650)).removed == 0  # 0: no age limit
    store.close()


def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite3"


def on_disk(path: Path) -> int:
    """The database file and its WAL: what the store costs the disk."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_a_backlog_of_20000_expired_events_is_gone_within_three_steps(tmp_path: Path) -> None:
    store = EventStore(store_path(tmp_path))
    fill(store, 20_000, NOW - timedelta(days=200))
    fill(store, 50, NOW - timedelta(hours=1), text="today")
    retention = EventRetention(store_path(tmp_path))
    removed = [retention.step(90, 200, NOW).expired for _ in range(3)]
    assert sum(removed) == 20_000 and all(r <= retention.step_rows for r in removed)
    assert store.count() == 50
    store.close()


def test_a_step_removes_at_most_its_bound(tmp_path: Path) -> None:
    store = EventStore(store_path(tmp_path))
    fill(store, 3_000, NOW - timedelta(days=200))
    retention = EventRetention(store_path(tmp_path), step_rows=1_000, batch_rows=100)
    first = retention.step(90, 0, NOW)
    assert first.expired == 1_000 and first.backlog and store.count() == 2_000
    store.close()


def test_over_the_size_cap_the_oldest_go_until_the_store_is_under_it(tmp_path: Path) -> None:
    store = EventStore(store_path(tmp_path))
    fill(store, 30_000, NOW - timedelta(days=10), text="x" * 300)
    newest = store.latest(1)[0].seq
    assert on_disk(store_path(tmp_path)) > 12 * 1024 * 1024
    retention = EventRetention(store_path(tmp_path))
    sizes = []
    for _ in range(12):
        retention.step(90, 10, NOW)
        sizes.append(on_disk(store_path(tmp_path)))  # the cap is for the file and its WAL together
    left = list(store.all())
    assert 0 < len(left) < 30_000
    assert left[-1].seq == newest and left[0].seq == newest - len(left) + 1  # the oldest went, none in between
    assert sizes[-1] <= 10 * 1024 * 1024
    for i in range(300):  # the runner's own writes, one at a time, keep the WAL near its limit too
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"later {i} " + "y" * 300, time=NOW))
    wal = store_path(tmp_path).with_name("events.sqlite3-wal")
    assert wal.stat().st_size <= WAL_BYTES + 256 * 1024
    store.close()


def test_incremental_vacuum_shrinks_the_file(tmp_path: Path) -> None:
    store = EventStore(store_path(tmp_path))
    fill(store, 15_000, NOW - timedelta(days=100), text="y" * 200)
    fill(store, 100, NOW, text="kept")
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file itself
    before = on_disk(store_path(tmp_path))
    retention = EventRetention(store_path(tmp_path))
    retention.step(90, 0, NOW)
    retention.step(90, 0, NOW)
    assert on_disk(store_path(tmp_path)) < before  # a WAL of up to 4 MB may be left (journal_size_limit)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = on_disk(store_path(tmp_path))
    assert after < before / 4, (before, after)
    assert store.count() == 100
    store.close()


def test_a_store_of_an_earlier_release_is_converted_once_while_small(tmp_path: Path) -> None:
    path = store_path(tmp_path)
    old = sqlite3.connect(path)  # as releases before incremental vacuuming made it
    old.execute("PRAGMA auto_vacuum=NONE")
    old.execute("CREATE TABLE settings (name TEXT)")  # a table fixes the file's auto_vacuum for good
    old.commit()
    old.close()
    store = EventStore(path)
    fill(store, 5_000, NOW - timedelta(days=100), text="z" * 200)
    assert int(store._db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 0
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = on_disk(path)
    assert before < CONVERT_LIMIT_BYTES
    retention = EventRetention(path)
    result = retention.step(90, 0, NOW)
    assert result.converted and not result.cannot_shrink
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert on_disk(path) < before / 4, (before, on_disk(path))
    store.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "the runner's connection goes on writing"))
    assert store.count() == 1
    assert int(store._db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


async def test_pruning_in_a_thread_never_stalls_the_event_loop(tmp_path: Path) -> None:
    """The runner emits events on the loop while a step prunes and rewrites the text index (which holds the
    write lock throughout): no turn of the loop, its event writes included, takes more than 50 ms."""
    store = EventStore(store_path(tmp_path))
    fill(store, 20_000, NOW - timedelta(days=200), text="w" * 200)
    store._db.execute("BEGIN")  # a history that stays: varied text, a text index whose rewrite takes a while
    for i in range(40_000):
        digest = hashlib.sha1(str(i).encode()).hexdigest()
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"Delivered {digest} to user{i % 97}",
                           account="alice", subject=f"Invoice {digest[:12]}", time=NOW - timedelta(seconds=i)))
    store._db.execute("COMMIT")
    retention = EventRetention(store_path(tmp_path))
    worst = 0.0
    emitted = 40_000

    async def ticker() -> None:
        nonlocal worst, emitted
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            for _ in range(5):  # the bus's sink, as the runner writes: in batches
                store(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "during the step"))
            emitted += 5
            worst = max(worst, time.perf_counter() - started - 0.005)

    task = asyncio.create_task(ticker())
    try:
        result = await asyncio.to_thread(retention.step, 90, 200, NOW)
    finally:
        task.cancel()
    assert result.expired == 20_000
    print(f"worst turn of the loop: {worst * 1000:.1f} ms")
    assert worst < 0.050, f"the loop stalled {worst * 1000:.0f} ms"
    assert store.count() == emitted  # every event written once the lock was free (a read writes what waits)
    # Both connections wrote the full-text index at once (appends here, deletes there): it is whole.
    store._db.execute("INSERT INTO events_fts(events_fts) VALUES ('integrity-check')")
    assert store._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    store.close()


def test_routine_expiry_near_the_cap_does_not_rewrite_the_whole_text_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between its target (80 %) and its cap, a store loses a few expired events every cycle: rewriting the
    full-text index each time would cost seconds per cycle on a large store; removal for the cap does it."""
    from pop3gui.core.state.sqlite_space import space, upkeep_connection

    store = EventStore(store_path(tmp_path))
    fill(store, 100, NOW - timedelta(days=91), text="old")
    fill(store, 30_000, NOW - timedelta(days=1))
    db = upkeep_connection(store_path(tmp_path))
    live = space(db, store_path(tmp_path)).live_bytes
    db.close()
    cap_mb = math.ceil(live / 0.9 / 2**20)
    assert 0.8 < live / (cap_mb * 2**20) < 1.0, (live, cap_mb)  # the band this test is about
    rewrites: list[int] = []
    monkeypatch.setattr(EventRetention, "_optimize_index", lambda self, db: rewrites.append(1))

    result = EventRetention(store_path(tmp_path)).step(90, cap_mb, NOW)
    assert (result.expired, result.over_cap) == (100, 0) and rewrites == []

    result = EventRetention(store_path(tmp_path)).step(90, max(1, cap_mb // 2), NOW)  # now over the cap
    assert result.over_cap > 0 and rewrites == [1]
    store.close()


def test_a_removal_for_the_cap_that_stops_under_it_promises_no_more(tmp_path: Path) -> None:
    """One step's bound stops the removal short of its target (80 %) but under the cap: the next step
    removes nothing, so the event must not say that more follow."""
    from pop3gui.core.state.sqlite_space import space, upkeep_connection

    store = EventStore(store_path(tmp_path))
    fill(store, 30_000, NOW - timedelta(days=1), text="v" * 300)
    store.close()
    db = upkeep_connection(store_path(tmp_path))
    live = space(db, store_path(tmp_path)).live_bytes
    db.close()
    cap_mb = (live + WAL_BYTES + HEADROOM_BYTES) // 2**20  # over the cap by less than a megabyte
    retention = EventRetention(store_path(tmp_path), step_rows=2_000)
    first = retention.step(90, cap_mb, NOW)
    assert first.over_cap == 2_000  # the step's bound, not the target
    assert not first.backlog
    assert retention.step(90, cap_mb, NOW).over_cap == 0
    still_over = EventRetention(store_path(tmp_path), step_rows=100).step(90, cap_mb // 2, NOW)
    assert still_over.over_cap == 100 and still_over.backlog  # far over the cap: the next step goes on
