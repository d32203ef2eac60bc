"""Events are stored in order, read back whole, and logged to a file."""

from __future__ import annotations

from pathlib import Path

from pop3gui.core.events import Event, EventBus, EventId, Severity
from pop3gui.core.eventstore import EventLog, EventStore


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


def test_unsubscribe_stops_delivery() -> None:
    seen: list[Event] = []
    bus = EventBus()
    unsubscribe = bus.subscribe(seen.append)
    bus.emit(make(1))
    unsubscribe()
    bus.emit(make(2))
    assert [e.text for e in seen] == ["event 1"]
