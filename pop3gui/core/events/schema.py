"""How events are laid out in SQLite: the table, its indexes, the text index, and an event as a row.

The store (:mod:`pop3gui.core.events.store`) reads and writes them; the
layout is kept here, apart from how the store uses it, to be read in one place.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TypeVar

from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity
from pop3gui.core.failures import Failure

_Name = TypeVar("_Name", Failure, Outcome)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    id INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    account TEXT NOT NULL,
    uid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    cause TEXT NOT NULL,
    fix TEXT NOT NULL,
    transcript TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_account ON events(account, seq);
CREATE INDEX IF NOT EXISTS events_severity ON events(severity, seq);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
"""
# The indexes are created by CREATE ... IF NOT EXISTS on every open: a store of an earlier release gets
# them (once, the first time it is opened) like a new one.  ``time`` is ISO 8601 in UTC, so text order is
# time order and ``--since`` is an index range.
# The typed fields, added in place to stores of earlier releases (their rows get the defaults).
TYPED_COLUMNS = (
    ("recipient", "TEXT NOT NULL DEFAULT ''"),
    ("reply_code", "INTEGER"),  # NULL: the event quotes no reply
    ("reply_enhanced", "TEXT NOT NULL DEFAULT ''"),
    ("reply_text", "TEXT NOT NULL DEFAULT ''"),
    ("diagnosis", "TEXT NOT NULL DEFAULT ''"),
    ("outcome", "TEXT NOT NULL DEFAULT ''"),
)
COLUMNS = ("seq, time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript, "
           + ", ".join(name for name, _ in TYPED_COLUMNS))
EVENT_COLUMNS = ", ".join("events." + name.strip() for name in COLUMNS.split(","))  # beside events_fts

SEARCH_FIELDS = ("text", "cause", "fix", "subject", "message_id")  # what the Events tab's search box reads

# Text search: an external-content FTS5 table over the searched columns with the trigram tokenizer, which
# finds any substring of 3 or more characters ignoring case (what ``grep`` has always meant here).  The
# triggers keep it in step with every connection's inserts and deletes (retention deletes from its own).
# ``events_fts_state.low``: the events from that seq on are in the index; a store of an earlier release
# starts at its newest event + 1 and is indexed backwards in steps (``build_search_index``), so opening it
# never waits for the whole index; until then the older part is searched by LIKE.  0: everything indexed.
FTS_COLUMNS = ", ".join(SEARCH_FIELDS)
_FTS_NEW = ", ".join("new." + c for c in SEARCH_FIELDS)
_FTS_OLD = ", ".join("old." + c for c in SEARCH_FIELDS)
FTS_SCHEMA = (
    f"CREATE VIRTUAL TABLE events_fts USING fts5({FTS_COLUMNS}, content='events', content_rowid='seq', "
    "tokenize='trigram')",
    "CREATE TABLE events_fts_state (low INTEGER NOT NULL)",
    f"""CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
        INSERT INTO events_fts(rowid, {FTS_COLUMNS}) VALUES (new.seq, {_FTS_NEW});
    END""",
    f"""CREATE TRIGGER events_fts_delete AFTER DELETE ON events
    WHEN old.seq >= (SELECT low FROM events_fts_state) BEGIN
        INSERT INTO events_fts(events_fts, rowid, {FTS_COLUMNS}) VALUES ('delete', old.seq, {_FTS_OLD});
    END""",
    f"""CREATE TRIGGER events_fts_update AFTER UPDATE ON events
    WHEN old.seq >= (SELECT low FROM events_fts_state) BEGIN
        INSERT INTO events_fts(events_fts, rowid, {FTS_COLUMNS}) VALUES ('delete', old.seq, {_FTS_OLD});
        INSERT INTO events_fts(rowid, {FTS_COLUMNS}) VALUES (new.seq, {_FTS_NEW});
    END""",
)


def stored_time(moment: datetime) -> str:
    """ISO 8601 in UTC for a zone-aware time (text order is then time order); a naive one as it is."""
    return (moment.astimezone(timezone.utc) if moment.tzinfo is not None else moment).isoformat()


INSERT = f"INSERT INTO events ({COLUMNS.removeprefix('seq, ')}) VALUES ({', '.join('?' * 17)})"


def to_row(event: Event) -> tuple[object, ...]:
    """An event as the values of :data:`INSERT`."""
    reply = event.reply
    return (stored_time(event.time), int(event.id), int(event.severity), event.account, event.uid,
            event.message_id, event.subject, event.text, event.cause, event.fix, event.transcript,
            event.recipient, reply.code if reply else None, reply.enhanced if reply else "",
            reply.text if reply else "", event.diagnosis or "", event.outcome or "")


def from_row(row: tuple[object, ...]) -> Event:
    """A row read with :data:`COLUMNS` as its event (a newer release's event id reads as MESSAGE_FAILED, its
    unknown diagnosis or outcome as none)."""
    (seq, time, eid, sev, account, uid, mid, subject, text, cause, fix, transcript,
     recipient, reply_code, reply_enhanced, reply_text, diagnosis, outcome) = row
    try:
        event_id = EventId(int(str(eid)))
    except ValueError:  # written by a newer release
        event_id = EventId.MESSAGE_FAILED
    return Event(
        id=event_id, severity=Severity(int(str(sev))), text=str(text), account=str(account), uid=str(uid),
        message_id=str(mid), subject=str(subject), cause=str(cause), fix=str(fix), transcript=str(transcript),
        recipient=str(recipient),
        reply=None if reply_code is None else Reply(int(str(reply_code)), str(reply_enhanced), str(reply_text)),
        diagnosis=_known(Failure, diagnosis), outcome=_known(Outcome, outcome),
        time=datetime.fromisoformat(str(time)), seq=int(str(seq)),
    )


def _known(kind: type[_Name], value: object) -> _Name | None:
    """A stored name as its enum member; None when empty or written by a newer release."""
    try:
        return kind(str(value)) if value else None
    except ValueError:
        return None
