"""Events are stored in order, read back whole, and logged to a file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventBus, EventId, Severity
from pop3gui.core.events.store import EventLog, EventStore


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
