"""Events: the ids and names docs/events.md promises, and how an event reads."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity, event_record
from pop3gui.core.failures import Failure

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
# A row of the table of events: | 4001 | error | RECIPIENT_REFUSED | when ... |
_EVENT_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([^|]*?)\s*\|\s*([A-Za-z0-9_]+)\s*\|")


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _documented_events() -> list[tuple[int, str, str]]:
    """(id, severity, name) of every row of the table of events, in the document's order."""
    return [(int(m[1]), m[2], m[3]) for line in _doc().splitlines() if (m := _EVENT_ROW.match(line))]


def _section(title: str) -> str:
    text = _doc()
    start = text.index(f"\n{title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


# -- docs/events.md and the enums ----------------------------------------------------------


def test_every_event_id_is_documented_with_its_number_and_name() -> None:
    documented = {(number, name) for number, _, name in _documented_events()}
    missing = [f"{int(member)} {member.name}" for member in EventId if (int(member), member.name) not in documented]
    assert missing == [], f"add a row to {DOC} for each of these"


def test_every_documented_event_exists_under_that_number_and_name() -> None:
    known = {(int(member), member.name) for member in EventId}
    unknown = [f"{number} {name}" for number, _, name in _documented_events() if (number, name) not in known]
    assert unknown == [], f"{DOC} documents events the code does not have (or under another number)"


def test_each_event_is_documented_once_and_in_order() -> None:
    numbers = [number for number, _, _ in _documented_events()]
    assert len(numbers) == len(set(numbers))
    assert numbers == sorted(numbers)


def test_documented_severities_are_real_severities() -> None:
    names = {s.name.lower() for s in Severity}
    bad = [(number, severity) for number, severity, _ in _documented_events()
           if not set(re.split(r"\s*/\s*", severity)) <= names]
    assert bad == []


def test_the_fields_for_programs_are_exactly_the_fields_of_an_event_record() -> None:
    table = _section("## Fields for programs")
    documented = {name for line in table.splitlines() if line.startswith("| `")
                  for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    record = event_record(Event(EventId.CYCLE_STARTED, Severity.INFO, "x"))
    assert documented == set(record)


def test_every_diagnosis_and_outcome_is_documented_and_nothing_else() -> None:
    fields = _section("## Fields for programs")
    diagnoses = fields[fields.index("Diagnoses"):fields.index("For example")]
    assert set(re.findall(r"`([a-z_]+)`", diagnoses)) - {"pop3gui"} == {str(f) for f in Failure}
    outcome_row = next(line for line in fields.splitlines() if line.startswith("| `outcome`"))
    assert set(re.findall(r"`([a-z_]+)`", outcome_row.split("|")[3])) == {str(o) for o in Outcome}


# -- how an event reads ----------------------------------------------------------------------


@pytest.fixture
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is Central European (UTC+1 in January)."""
    if sys.platform == "win32":
        pytest.skip("time.tzset is POSIX only")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


WHEN = datetime(2024, 1, 2, 9, 30, 5, tzinfo=timezone.utc)


def test_one_line_is_local_time_severity_id_account_and_text(berlin_time: None) -> None:
    event = Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "The local server refused erin@contoso.eu.",
                  account="erin", time=WHEN)
    assert event.one_line() == "2024-01-02 10:30:05 ERROR   4001 [erin] The local server refused erin@contoso.eu."
    plain = Event(EventId.CYCLE_STARTED, Severity.INFO, "Cycle started.", time=WHEN)
    assert plain.one_line() == "2024-01-02 10:30:05 INFO    1001 Cycle started."


def test_full_text_adds_only_what_the_event_carries(berlin_time: None) -> None:
    bare = Event(EventId.CYCLE_STARTED, Severity.INFO, "Cycle started.", time=WHEN)
    assert bare.full_text() == bare.one_line()

    event = Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "Refused.", account="erin", uid="U7",
                  subject="Offer", cause="The domain is not accepted.", fix="Add contoso.eu.",
                  transcript="<C>: RCPT TO:<erin@contoso.eu>\n<S>: 550 5.7.1 Unable to relay",
                  recipient="erin@contoso.eu", reply=Reply(550, "5.7.1", "Unable to relay"),
                  diagnosis=Failure.DOMAIN_NOT_ACCEPTED, time=WHEN)
    lines = event.full_text().splitlines()
    assert lines[0] == event.one_line()
    assert "  Message: 'Offer' Message-ID - UIDL U7" in lines
    assert "  Recipient: erin@contoso.eu" in lines
    assert "  Reply: 550 5.7.1 Unable to relay" in lines
    assert "  Diagnosis: domain_not_accepted" in lines
    assert not any(line.startswith("  Outcome:") for line in lines)
    assert lines[-5:] == ["  Cause: The domain is not accepted.", "  Fix: Add contoso.eu.", "  Transcript:",
                          "    <C>: RCPT TO:<erin@contoso.eu>", "    <S>: 550 5.7.1 Unable to relay"]


def test_a_reply_reads_as_the_server_gave_it() -> None:
    assert str(Reply(550, "5.7.1", "Unable to relay")) == "550 5.7.1 Unable to relay"
    assert str(Reply(421)) == "421"
    assert str(Reply(250, text="OK")) == "250 OK"
