"""Events are stored in order, read back whole, and logged to a file."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.events.model import Event, EventBus, EventId, Outcome, Reply, Severity
from pop3gui.core.events.log import EventLog
from pop3gui.core.events.store import EventStore
from pop3gui.core.failures import Failure


def make(n: int, **kw: str) -> Event:
    return Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event {n}", **kw)


def test_store_round_trip_and_order(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    bus = EventBus()
    bus.subscribe(store)
    for n in range(5):
        bus.emit(make(n, account="alice", cause="c", fix="f", transcript="<C>: RCPT TO:<x>"))
    events = store.latest(3)
    assert [e.text for e in events] == ["event 2", "event 3", "event 4"]
    assert events[0].account == "alice" and events[0].transcript == "<C>: RCPT TO:<x>"
    assert [e.text for e in store.since(events[0].seq)] == ["event 3", "event 4"]
    assert store.count() == 5
    store.close()


def test_log_file_carries_cause_fix_and_transcript(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs" / "pop3gui.log")
    log(Event(id=EventId.RECIPIENT_REFUSED, severity=Severity.ERROR, text="refused", cause="why", fix="how",
              transcript="<S>: 554 5.7.1 Relay access denied"))
    log(Event(id=EventId.MESSAGE_DOWNLOADED, severity=Severity.DEBUG, text="debug only"))
    log.close()
    text = (tmp_path / "logs" / "pop3gui.log").read_text()
    assert "4001" in text and "Cause: why" in text and "Fix: how" in text and "554 5.7.1" in text
    assert "debug only" not in text


def test_log_file_rotates_keeping_private_backups(tmp_path: Path) -> None:
    path = tmp_path / "pop3gui.log"
    log = EventLog(path, max_bytes=400, backups=2)
    for n in range(30):
        log(Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event number {n:02d}"))
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pop3gui.log", "pop3gui.log.1", "pop3gui.log.2"]
    kept = "".join((tmp_path / name).read_text() for name in ("pop3gui.log.2", "pop3gui.log.1", "pop3gui.log"))
    numbers = [int(line.rsplit(" ", 1)[1]) for line in kept.splitlines()]
    assert numbers == list(range(numbers[0], 30)) and numbers[0] > 0, "newest last, nothing lost in between"
    for name in files:
        assert (tmp_path / name).stat().st_size <= 400
        if os.name == "posix":
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_log_file_appends_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "pop3gui.log"
    for text in ("first run", "second run"):
        log = EventLog(path)
        log(Event(id=EventId.CYCLE_STARTED, severity=Severity.INFO, text=text))
        log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith(" first run") and lines[1].endswith(" second run")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_log_that_cannot_be_written_is_reported_once_and_never_raises(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pop3gui.log"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC, like a full disk
    device_mode = stat.S_IMODE(os.stat("/dev/full").st_mode)
    log = EventLog(path)
    for n in range(3):
        log(Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event {n}"))
    log.close()
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1 and "No space left" in err
    assert stat.S_IMODE(os.stat("/dev/full").st_mode) == device_mode, "only regular files are made private"


def test_a_rotation_that_cannot_move_the_log_keeps_writing_and_touches_no_backup(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pop3gui.log"
    (tmp_path / "pop3gui.log.1").write_text("an old log\n")
    blocker = tmp_path / "pop3gui.log.rotating"  # the file cannot be moved aside (like a lock on Windows)
    blocker.mkdir()
    (blocker / "x").write_text("x")
    log = EventLog(path, max_bytes=300)
    for n in range(20):
        log(Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"event number {n:02d}"))
    log.close()
    assert path.read_text().count("event number") == 20, "nothing lost"
    assert (tmp_path / "pop3gui.log.1").read_text() == "an old log\n" and not (tmp_path / "pop3gui.log.2").exists()
    assert capsys.readouterr().err.count("cannot write the log file") == 1


def test_a_failing_sink_does_not_stop_the_others_or_the_sender(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []
    bus = EventBus()

    def broken(event: Event) -> None:
        raise OSError(28, "No space left on device")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.emit(make(1))
    assert [e.text for e in seen] == ["event 1"]
    assert "an event sink failed" in caplog.text


def test_unsubscribe_stops_delivery() -> None:
    seen: list[Event] = []
    bus = EventBus()
    unsubscribe = bus.subscribe(seen.append)
    bus.emit(make(1))
    unsubscribe()
    bus.emit(make(2))
    assert [e.text for e in seen] == ["event 1"]


# The events table as releases before the typed fields wrote it.
_OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, id INTEGER NOT NULL, severity INTEGER NOT NULL,
    account TEXT NOT NULL, uid TEXT NOT NULL, message_id TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
    cause TEXT NOT NULL, fix TEXT NOT NULL, transcript TEXT NOT NULL
);
CREATE INDEX events_account ON events(account, seq);
"""


def _old_store(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_OLD_SCHEMA)
    db.execute("INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix,"
               " transcript) VALUES ('2026-01-05T09:30:00+00:00', 4001, 40, 'erin', 'UID9', '', 'Invoice',"
               " 'refused', 'cause', 'fix', '')")
    db.close()


def test_a_store_of_an_earlier_release_gains_the_typed_fields_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    _old_store(path)
    store = EventStore(path)
    try:
        [old] = store.all()
        assert old.text == "refused" and old.account == "erin" and old.id == EventId.RECIPIENT_REFUSED
        assert old.recipient == "" and old.reply is None and old.diagnosis is None and old.outcome is None
        typed = Event(EventId.DIVERTED_TO_UNDELIVERABLE, Severity.WARNING, "diverted", recipient="erin@contoso.eu",
                      reply=Reply(550, "5.7.1", "Unable to relay"), diagnosis=Failure.DOMAIN_NOT_ACCEPTED,
                      outcome=Outcome.DIVERTED)
        store.append(typed)
        back = store.latest(1)[0]
        assert (back.recipient, back.reply, back.diagnosis, back.outcome) == (
            typed.recipient, typed.reply, typed.diagnosis, typed.outcome)
    finally:
        store.close()


def test_names_written_by_a_newer_release_read_back_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    EventStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix,"
               " transcript, diagnosis, outcome) VALUES ('2026-01-05T09:30:00+00:00', 4001, 40, '', '', '', '',"
               " 'from the future', '', '', '', 'quantum_refusal', 'teleported')")
    db.close()
    store = EventStore(path)
    try:
        [event] = store.all()
        assert event.text == "from the future" and event.diagnosis is None and event.outcome is None
    finally:
        store.close()


def _open_when_released(path: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        EventStore(Path(path)).close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    """After an upgrade the tray, a run and `events --follow` may all open the old store in the same moment."""
    context = multiprocessing.get_context("spawn" if sys.platform != "linux" else "fork")
    for trial in range(5):
        path = tmp_path / f"events{trial}.sqlite3"
        _old_store(path)
        start, results = context.Barrier(3), context.Queue()
        workers = [context.Process(target=_open_when_released, args=(str(path), start, results)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 3
