"""The Housekeeper: one bounded step per cycle over the state folder's stores, and problems said once."""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pop3gui.core.config.model import Config, EventsConfig
from pop3gui.core.engine.housekeeping import Housekeeper
from pop3gui.core.engine.report import Reporter
from pop3gui.core.events.model import Event, EventBus, EventId, Severity
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.journal import Journal
from pop3gui.core.state.paths import Paths

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)


def setup(tmp_path: Path) -> tuple[Paths, Housekeeper, list[Event]]:
    paths = Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
    paths.state_dir.mkdir(parents=True)
    said: list[Event] = []
    bus = EventBus()
    bus.subscribe(said.append)
    return paths, Housekeeper(paths, Reporter(bus), now=NOW.timestamp), said


def history(paths: Paths, n: int, days_ago: float, text: str = "Delivered to alice@contoso.com") -> None:
    store = EventStore(paths.events_db)
    store._db.execute("BEGIN")
    for i in range(n):
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"{text} #{i} " + "x" * 300,
                           time=NOW - timedelta(days=days_ago) + timedelta(seconds=i)))
    store._db.execute("COMMIT")
    store.close()


async def test_a_20000_event_backlog_goes_within_three_steps_and_the_journal_is_pruned_too(tmp_path: Path) -> None:
    paths, keeper, said = setup(tmp_path)
    history(paths, 20_000, 300)
    journal = Journal(paths.journal_db)
    journal.now = lambda: NOW.timestamp() - 60 * 86400
    journal.finish("alice", "u1", "v2:long-gone", 10, "delivered", ["alice@contoso.com"])
    journal.forget("alice", ["u1"])
    steps = [await keeper.step(Config()) for _ in range(3)]
    assert sum(s.events.expired for s in steps) == 20_000
    assert steps[0].journal.deliveries == 1
    # the heap's freed megabytes go back after a step that pruned (Linux), not after one that did nothing
    assert steps[0].memory_given_back is sys.platform.startswith("linux")
    assert (await keeper.step(Config())).memory_given_back is False
    assert journal._db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert not [e for e in said if e.id == EventId.HOUSEKEEPING_FAILED]  # routine expiry says nothing at info
    journal.close()


async def test_over_the_cap_the_removal_is_said(tmp_path: Path) -> None:
    paths, keeper, said = setup(tmp_path)
    history(paths, 40_000, 1)
    config = replace(Config(), events=EventsConfig(keep_days=90, max_mb=10))
    for _ in range(4):
        await keeper.step(config)
    pruned = [e for e in said if e.id == EventId.EVENTS_PRUNED]
    assert pruned and pruned[0].severity == Severity.INFO and "under 10 MB" in pruned[0].text
    assert "max_mb" in pruned[0].fix


async def test_a_damaged_store_is_one_event_not_a_crash_and_steps_never_overlap(tmp_path: Path) -> None:
    paths, keeper, said = setup(tmp_path)
    paths.events_db.write_bytes(b"this is not a database" * 100)
    first = await keeper.step(Config())
    await keeper.step(Config())
    failed = [e for e in said if e.id == EventId.HOUSEKEEPING_FAILED]
    assert len(failed) == 1 and str(paths.events_db) in failed[0].text and failed[0].fix
    assert first.events.removed == 0
    paths.events_db.unlink()
    both = await asyncio.gather(keeper.step(Config()), keeper.step(Config()))
    assert sorted(s.skipped for s in both) == [False, True]


async def test_every_step_of_every_housekeeper_works_on_the_one_housekeeping_thread(tmp_path: Path) -> None:
    for n in range(3):  # a window makes a new Connector, and so a new Housekeeper, for every run
        paths, keeper, _ = setup(tmp_path / str(n))
        history(paths, 300, 300)
        for _ in range(3):
            await keeper.step(Config())
    assert len([t for t in threading.enumerate() if t.name.startswith("pop3gui-housekeeping")]) == 1
