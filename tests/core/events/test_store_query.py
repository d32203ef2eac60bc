"""EventStore.query: each filter, filters together, and a store from an earlier release."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.store import EventStore

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


def ev(text: str, *, account: str = "", severity: Severity = Severity.INFO, minutes: float = 0, cause: str = "",
       fix: str = "") -> Event:
    return Event(id=EventId.MESSAGE_DELIVERED, severity=severity, text=text, account=account, cause=cause, fix=fix,
                 time=T0 + timedelta(minutes=minutes))


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = EventStore(tmp_path / "events.sqlite3")
    for e in (
        ev("alice delivered", account="alice", minutes=0),
        ev("bob refused", account="bob", severity=Severity.ERROR, minutes=10, cause="Unknown user",
           fix="Add the mailbox"),
        ev("alice debug", account="alice", severity=Severity.DEBUG, minutes=20),
        ev("cycle warning", severity=Severity.WARNING, minutes=30, cause="Grüße aus Köln", fix="100% sure"),
        ev("alice failed", account="alice", severity=Severity.ERROR, minutes=40, fix="Check the PASSWORD"),
    ):
        s.append(e)
    return s


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events]


def test_no_filter_is_everything_oldest_first(store: EventStore) -> None:
    assert texts(store.query()) == ["alice delivered", "bob refused", "alice debug", "cycle warning", "alice failed"]


def test_account_is_an_exact_name(store: EventStore) -> None:
    assert texts(store.query(account="alice")) == ["alice delivered", "alice debug", "alice failed"]
    assert store.query(account="ali") == []
    assert texts(store.query(account="")) == ["cycle warning"]  # the events of no account


@pytest.mark.parametrize(("level", "expected"), [
    (Severity.DEBUG, 5), (Severity.INFO, 4), (Severity.WARNING, 3), (Severity.ERROR, 2)])
def test_severity_keeps_that_level_and_above(store: EventStore, level: Severity, expected: int) -> None:
    found = store.query(min_severity=level)
    assert len(found) == expected and all(e.severity >= level for e in found)


def test_since_is_inclusive_and_zone_aware(store: EventStore) -> None:
    assert texts(store.query(since=T0 + timedelta(minutes=30))) == ["cycle warning", "alice failed"]
    # The same moment in another zone is the same moment.
    cest = timezone(timedelta(hours=2))
    assert texts(store.query(since=(T0 + timedelta(minutes=30)).astimezone(cest))) == ["cycle warning",
                                                                                       "alice failed"]
    assert store.query(since=T0 + timedelta(minutes=41)) == []


def test_events_stamped_in_another_zone_are_found_by_their_moment(tmp_path: Path) -> None:
    s = EventStore(tmp_path / "e.sqlite3")
    tokyo = timezone(timedelta(hours=9))
    s.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "late in Tokyo", time=(T0 + timedelta(hours=1))
                   .astimezone(tokyo)))
    s.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "early in UTC", time=T0))
    assert texts(s.query(since=T0 + timedelta(minutes=30))) == ["late in Tokyo"]
    [back] = s.query(grep="tokyo")
    assert back.time == T0 + timedelta(hours=1)


def test_grep_reads_text_cause_and_fix_ignoring_case(store: EventStore) -> None:
    assert texts(store.query(grep="REFUSED")) == ["bob refused"]
    assert texts(store.query(grep="unknown user")) == ["bob refused"]  # the cause
    assert texts(store.query(grep="password")) == ["alice failed"]  # the fix
    assert texts(store.query(grep="GRÜSSE")) == ["cycle warning"]  # beyond ASCII too
    assert texts(store.query(grep="köln")) == ["cycle warning"]


def test_grep_takes_like_wildcards_literally(store: EventStore) -> None:
    assert texts(store.query(grep="100%")) == ["cycle warning"]
    assert store.query(grep="100%x") == []
    assert store.query(grep="alice_") == []
    assert store.query(grep="a%e") == []


def test_limit_is_the_newest_that_match_oldest_first(store: EventStore) -> None:
    assert texts(store.query(limit=2)) == ["cycle warning", "alice failed"]
    assert texts(store.query(account="alice", limit=2)) == ["alice debug", "alice failed"]
    assert store.query(limit=0) == []


def test_after_seq_is_how_a_follower_catches_up(store: EventStore) -> None:
    first = store.query()[1].seq
    assert texts(store.query(after_seq=first, account="alice")) == ["alice debug", "alice failed"]


def test_filters_combine(store: EventStore) -> None:
    assert texts(store.query(account="alice", min_severity=Severity.INFO)) == ["alice delivered", "alice failed"]
    assert texts(store.query(account="alice", min_severity=Severity.ERROR, grep="check")) == ["alice failed"]
    assert texts(store.query(min_severity=Severity.WARNING, since=T0 + timedelta(minutes=5), limit=2)) == [
        "cycle warning", "alice failed"]
    assert store.query(account="bob", since=T0 + timedelta(minutes=11)) == []


def plan_of(store: EventStore, path: Path, **filters: object) -> str:
    """SQLite's plan for the statement ``query(**filters)`` runs."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001 - the SQL as run, with its values
    try:
        store.query(**filters)  # type: ignore[arg-type]
    finally:
        store._db.set_trace_callback(None)  # noqa: SLF001
    [sql] = [s for s in statements if s.lstrip().startswith("SELECT") and "transcript" in s]  # the one reading rows
    db = sqlite3.connect(path)
    try:
        return " | ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql))
    finally:
        db.close()


def test_the_filters_read_through_the_indexes(store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    assert "events_account" in plan_of(store, path, account="alice", limit=50)
    # --since: the first seq at or after the time, from the time index, bounds a primary-key range.
    since = plan_of(store, path, since=T0 + timedelta(minutes=30), limit=50)
    assert "COVERING INDEX events_time" in since and "PRIMARY KEY (rowid>?" in since, since
    assert "SCAN events" not in since
    following = plan_of(store, path, after_seq=3, min_severity=Severity.ERROR)
    assert "SCAN events" not in following, following


OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, id INTEGER NOT NULL, severity INTEGER NOT NULL,
    account TEXT NOT NULL, uid TEXT NOT NULL, message_id TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
    cause TEXT NOT NULL, fix TEXT NOT NULL, transcript TEXT NOT NULL
);
CREATE INDEX events_account ON events(account, seq);
"""


def test_a_store_of_an_earlier_release_gains_the_indexes_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany(
        "INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript) "
        "VALUES (?, ?, ?, ?, '', '', '', ?, ?, '', '')",
        [((T0 + timedelta(minutes=n)).isoformat(), 3002, 40 if n % 10 == 0 else 20, f"acct{n % 3}", f"old {n}",
          "Relay denied" if n == 20 else "") for n in range(100)])
    db.commit()
    db.close()

    store = EventStore(path)
    try:
        found = store.query(account="acct2", min_severity=Severity.ERROR, since=T0 + timedelta(minutes=15),
                            grep="relay")
        assert texts(found) == ["old 20"]
        assert found[0].diagnosis is None and found[0].recipient == ""
        assert len(store.query(min_severity=Severity.ERROR)) == 10
    finally:
        store.close()
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert {"events_account", "events_severity", "events_time"} <= indexes


def test_opening_twice_creates_the_indexes_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    EventStore(path).close()
    EventStore(path).close()
    db = sqlite3.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'events_%'")]
    db.close()
    assert sorted(names) == ["events_account", "events_severity", "events_time"]


def test_recent_events_of_a_long_history_are_read_without_scanning_it(tmp_path: Path) -> None:
    """--since, --severity and following read what they return, not the whole store (counted in SQLite steps)."""
    path = tmp_path / "long.sqlite3"
    store = EventStore(path)
    store._db.executemany(  # noqa: SLF001 - a long history, fast
        "INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript) "
        "VALUES (?, 3002, ?, ?, '', '', '', ?, '', '', '')",
        [((T0 + timedelta(seconds=30 * n)).isoformat(), 40 if n % 5000 == 0 else 20, f"acct{n % 7}", f"n {n}")
         for n in range(50_000)])
    end = T0 + timedelta(seconds=30 * 50_000)

    def steps(**filters: object) -> tuple[int, int]:
        count = 0

        def tick() -> int:
            nonlocal count
            count += 1
            return 0

        store._db.set_progress_handler(tick, 100)  # noqa: SLF001
        try:
            found = len(store.query(**filters))  # type: ignore[arg-type]
        finally:
            store._db.set_progress_handler(None, 0)  # noqa: SLF001
        return found, count

    full_found, full = steps(grep="zz")  # too short for the text index
    assert full_found == 0 and full > 1000  # the cost of reading everything
    for filters, expected in (
        (dict(since=end - timedelta(hours=1), limit=500), 120),
        (dict(since=end - timedelta(hours=1), account="acct3", limit=500), 17),
        (dict(since=end - timedelta(days=1), min_severity=Severity.ERROR), 0),
        (dict(after_seq=49_990), 10),
        (dict(min_severity=Severity.ERROR), 10),
        (dict(grep="no such text"), 0),  # the text index
        (dict(grep="N 4999"), 11),
        (dict(grep="n 49999", limit=5), 1),
    ):
        found, cost = steps(**filters)
        assert found == expected, filters
        assert cost < full / 10, (filters, cost, full)
    store.close()
