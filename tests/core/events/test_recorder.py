"""The process's event bus wired to the event store and the log file."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.failures import Failure
from pop3gui.core.state.paths import Paths


def paths_under(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")


def refused(text: str = "The local server refused recipient erin@contoso.eu") -> Event:
    return Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, text, account="erin", recipient="erin@contoso.eu",
                 reply=Reply(550, "5.7.1", "Unable to relay"), diagnosis=Failure.DOMAIN_NOT_ACCEPTED,
                 cause="The domain is not accepted.", fix="Add it to the accepted domains.")


def open_files() -> set[Path]:
    """The files this process holds open (Linux)."""
    fds = Path("/proc/self/fd")
    found = set()
    for fd in fds.iterdir():
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue
    return found


def test_an_event_on_the_bus_reaches_the_store_and_the_log(tmp_path: Path) -> None:
    paths = paths_under(tmp_path)
    with EventRecorder(paths) as recorder:
        recorder.bus.emit(refused())
        [stored] = recorder.store.all()
    assert stored.id is EventId.RECIPIENT_REFUSED and stored.seq == 1
    assert stored.recipient == "erin@contoso.eu" and stored.reply == Reply(550, "5.7.1", "Unable to relay")
    assert stored.diagnosis is Failure.DOMAIN_NOT_ACCEPTED
    log = paths.log_file.read_text(encoding="utf-8")
    assert "4001 [erin] The local server refused recipient erin@contoso.eu" in log
    assert "Diagnosis: domain_not_accepted" in log and "Fix: Add it to the accepted domains." in log


def test_a_live_view_added_to_the_bus_sees_the_same_events(tmp_path: Path) -> None:
    with EventRecorder(paths_under(tmp_path)) as recorder:
        seen: list[Event] = []
        recorder.bus.subscribe(seen.append)
        event = recorder.bus.emit(refused())
        assert seen == [event] and recorder.store.count() == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the open files from /proc")
def test_close_closes_the_store_and_the_log(tmp_path: Path) -> None:
    paths = paths_under(tmp_path)
    recorder = EventRecorder(paths)
    recorder.bus.emit(refused())
    held = {paths.events_db.resolve(), paths.log_file.resolve()}
    assert held <= open_files()

    recorder.close()

    assert not held & open_files()
    with pytest.raises(sqlite3.ProgrammingError):
        recorder.store.count()


def test_a_second_recorder_reads_the_first_ones_events_back(tmp_path: Path) -> None:
    paths = paths_under(tmp_path)
    with EventRecorder(paths) as first:
        first.bus.emit(refused("the first run's refusal"))
        first.bus.emit(Event(EventId.DIVERTED_TO_UNDELIVERABLE, Severity.WARNING, "the first run's diversion",
                             account="erin", diagnosis=Failure.DOMAIN_NOT_ACCEPTED, outcome=Outcome.DIVERTED))
    with EventRecorder(paths) as second:
        second.bus.emit(refused("the second run's refusal"))
        events = list(second.store.all())
    assert [(e.seq, e.text) for e in events] == [
        (1, "the first run's refusal"), (2, "the first run's diversion"), (3, "the second run's refusal")]
    assert events[1].outcome is Outcome.DIVERTED and events[0].reply == Reply(550, "5.7.1", "Unable to relay")
    log = paths.log_file.read_text(encoding="utf-8")
    assert log.index("the first run's refusal") < log.index("the second run's refusal"), "the log is appended to"


def test_every_event_is_stored_whatever_its_severity(tmp_path: Path) -> None:
    """Which events are emitted at all is the engine's choice (DEBUG only at the debug level)."""
    with EventRecorder(paths_under(tmp_path)) as recorder:
        for severity in Severity:
            recorder.bus.emit(Event(EventId.MESSAGE_DOWNLOADED, severity, f"at {severity.name}"))
        assert [e.severity for e in recorder.store.all()] == list(Severity)


def test_the_log_file_keeps_the_configured_level_and_the_store_keeps_everything(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
    with EventRecorder(paths, "warning") as recorder:
        recorder.bus.emit(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "an ordinary delivery"))
        recorder.bus.emit(Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "a refusal"))
        assert [e.text for e in recorder.store.all()] == ["an ordinary delivery", "a refusal"]
    log = paths.log_file.read_text()
    assert "a refusal" in log and "an ordinary delivery" not in log
    with EventRecorder(paths, "debug") as recorder:
        recorder.bus.emit(Event(EventId.MESSAGE_DOWNLOADED, Severity.DEBUG, "a step"))
    assert "a step" in paths.log_file.read_text()
