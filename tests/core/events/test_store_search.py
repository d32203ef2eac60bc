"""The event store's text index, pages, counts and accounts: what a lazy view of millions of events reads."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.search import EventFilter
from pop3gui.core.events.store import EventStore

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
SEVERITIES = (Severity.DEBUG, Severity.INFO, Severity.WARNING, Severity.ERROR)
_INSERT = ("INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript) "
           "VALUES (?, 3002, ?, ?, '', ?, ?, ?, ?, '', '')")


def rows(n: int, start: int = 0) -> list[tuple[object, ...]]:
    """Event rows: severities in turn, three accounts, a few rare words."""
    return [((T0 + timedelta(seconds=i)).isoformat(), int(SEVERITIES[i % 4]), f"acct{i % 3}", f"<m{i}@example.net>",
             f"Subject {i}", f"Delivered message {i}" + (" Grüße aus Köln" if i % 97 == 5 else ""),
             "Needle in the cause" if i % 250 == 7 else "") for i in range(start, start + n)]


def expected(n: int, flt: EventFilter) -> list[int]:
    """The seqs (i + 1) that pass *flt*, by the rule the store must follow, computed in Python."""
    out = []
    for seq, (_time, sev, account, mid, subject, text, cause) in enumerate(rows(n), 1):
        event = Event(EventId.MESSAGE_DELIVERED, Severity(sev), str(text), account=str(account), cause=str(cause),
                      subject=str(subject), message_id=str(mid))
        if flt.matches(event):
            out.append(seq)
    return out


def fill(store: EventStore, n: int) -> None:
    store._db.execute("BEGIN")  # noqa: SLF001 - set-up speed only
    store._db.executemany(_INSERT, rows(n))  # noqa: SLF001
    store._db.execute("COMMIT")  # noqa: SLF001


def all_pages(store: EventStore, flt: EventFilter, limit: int, scan: int = 100_000) -> list[int]:
    seqs: list[int] = []
    before: int | None = None
    while True:
        events, before = store.page(flt, before_seq=before, limit=limit, scan=scan)
        seqs.extend(e.seq for e in events)
        if before is None:
            return seqs


def fts_in_step(path: Path) -> None:
    """FTS5's own check that the index holds exactly what the events table holds."""
    db = sqlite3.connect(path)
    try:
        db.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        db.close()


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = EventStore(tmp_path / "events.sqlite3")
    fill(s, 3000)
    return s


FILTERS = [
    EventFilter(),
    EventFilter(min_severity=Severity.WARNING),
    EventFilter(account="acct1"),
    EventFilter(min_severity=Severity.ERROR, account="acct2"),
    EventFilter(text="NEEDLE"),  # the cause, any case
    EventFilter(text="köln"),  # beyond ASCII, any case
    EventFilter(text="GRÜSSE"),  # "ß" folds to "ss": found without the index
    EventFilter(text="m12@"),  # the Message-ID
    EventFilter(text="subject 29"),  # the subject
    EventFilter(text="e 1"),  # a substring across words
    EventFilter(text="9", min_severity=Severity.INFO, account="acct0"),  # one character: no index
    EventFilter(text="message 2", min_severity=Severity.WARNING, account="acct1"),
]


@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_pages_are_newest_first_and_together_every_match_once(store: EventStore, flt: EventFilter) -> None:
    want = expected(3000, flt)
    assert want, "the filter should find something"
    assert all_pages(store, flt, limit=137) == want[::-1]
    assert all_pages(store, flt, limit=50, scan=400) == want[::-1]  # short scans: pages come back short
    count, exact = store.count_at_least(flt, 100_000)
    assert (count, exact) == (len(want), True)
    count, exact = store.count_at_least(flt, 5)
    assert count == min(5, len(want)) and exact == (len(want) < 5)


def test_a_page_stops_at_after_seq_and_starts_before_before_seq(store: EventStore) -> None:
    events, more = store.page(EventFilter(min_severity=Severity.ERROR), before_seq=100, after_seq=80, limit=50)
    assert [e.seq for e in events] == [seq for seq in range(99, 80, -1) if (seq - 1) % 4 == 3]
    assert more is None


def test_the_cli_grep_reads_text_cause_and_fix_only(store: EventStore) -> None:
    assert store.query(grep="m12@") == []  # a Message-ID: the Events tab's search box only
    assert len(store.query(grep="needle")) == len(expected(3000, EventFilter(text="needle")))


def test_a_search_reads_the_text_index(store: EventStore) -> None:
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001
    store.page(EventFilter(text="Needle"), limit=10)
    store._db.set_trace_callback(None)  # noqa: SLF001
    assert any("events_fts MATCH" in s for s in statements)
    assert not any("LIKE" in s for s in statements)


def test_accounts_are_listed_once_each_sorted(store: EventStore) -> None:
    store.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "no account"))
    store.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "x", account="Zeta"))
    assert store.accounts() == ["Zeta", "acct0", "acct1", "acct2"]


def test_the_index_stays_in_step_with_deletes_from_another_connection(tmp_path: Path, store: EventStore) -> None:
    path = tmp_path / "events.sqlite3"
    other = sqlite3.connect(path)  # as retention does: its own connection, plain DELETEs
    other.execute("DELETE FROM events WHERE seq <= 2000")
    other.execute("DELETE FROM events WHERE text LIKE '%Köln%'")
    other.commit()
    other.close()
    fts_in_step(path)
    assert all_pages(store, EventFilter(text="köln"), limit=100) == []
    want = [seq for seq in expected(3000, EventFilter(text="needle")) if seq > 2000]
    assert all_pages(store, EventFilter(text="needle"), limit=100) == want[::-1]
    store.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "a NEW needle"))
    assert store.page(EventFilter(text="new needle"), limit=5)[0][0].text == "a NEW needle"
    fts_in_step(path)


OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, id INTEGER NOT NULL, severity INTEGER NOT NULL,
    account TEXT NOT NULL, uid TEXT NOT NULL, message_id TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
    cause TEXT NOT NULL, fix TEXT NOT NULL, transcript TEXT NOT NULL
);
"""


def test_a_store_of_an_earlier_release_gets_its_text_index_in_steps(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany(_INSERT, rows(3000))
    db.commit()
    db.close()

    store = EventStore(path)  # opens at once: nothing is indexed yet
    assert not store.search_index_complete
    needle = EventFilter(text="needle")
    want = expected(3000, needle)
    store.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "a new needle"))  # indexed by the trigger
    assert all_pages(store, needle, limit=7) == [3001, *want[::-1]]  # older rows read without the index
    # A retention delete while the index is half built: rows below the indexed part are not in it.
    assert not store.build_search_index(1000)
    other = sqlite3.connect(path)
    other.execute("DELETE FROM events WHERE seq <= 100 OR seq = 2500")
    other.commit()
    other.close()
    steps = 0
    while not store.build_search_index(1000):
        steps += 1
    assert steps >= 1 and store.search_index_complete
    fts_in_step(path)
    assert all_pages(store, needle, limit=7) == [3001, *[s for s in want[::-1] if s > 100 and s != 2500]]
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001
    store.page(needle, limit=10)
    store._db.set_trace_callback(None)  # noqa: SLF001
    assert not any("LIKE" in s for s in statements)  # the whole store is answered by the index now
    store.close()
    reopened = EventStore(path)
    assert reopened.search_index_complete
    reopened.close()


def test_a_new_store_vacuums_incrementally_and_an_old_one_is_left_as_it_is(tmp_path: Path) -> None:
    EventStore(tmp_path / "new.sqlite3").close()
    old = tmp_path / "old.sqlite3"
    db = sqlite3.connect(old)
    db.executescript(OLD_SCHEMA)
    db.close()
    EventStore(old).close()
    modes = {}
    for name in ("new", "old"):
        db = sqlite3.connect(tmp_path / f"{name}.sqlite3")
        modes[name] = db.execute("PRAGMA auto_vacuum").fetchone()[0]
        db.close()
    assert modes == {"new": 2, "old": 0}  # 2: incremental


def test_two_stores_opening_an_old_store_at_once_create_the_index_once(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    first, second = EventStore(path), EventStore(path)
    first.append(Event(EventId.CYCLE_STARTED, Severity.INFO, "one needle"))
    assert [e.text for e in second.page(EventFilter(text="needle"))[0]] == ["one needle"]
    first.close()
    second.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM events_fts_state").fetchone()[0] == 1
    db.close()


def test_building_the_index_does_not_wait_for_another_writer_when_told_not_to(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany(_INSERT, rows(100))
    db.commit()
    db.close()
    store = EventStore(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.build_search_index(50, busy_ms=0)
    writer.execute("ROLLBACK")
    writer.close()
    assert not store.build_search_index(50, busy_ms=0)
    assert store.build_search_index(50, busy_ms=0)
    fts_in_step(path)
    store.close()


def test_a_search_within_an_account_of_few_events_reads_that_account_not_every_match(tmp_path: Path) -> None:
    """A common word and an account with few events (or none: a configured account not heard from yet):
    the search reads the account's events and looks each up in the text index, instead of every match of
    the word; the answer is the same either way."""
    store = EventStore(tmp_path / "events.sqlite3")
    fill(store, 3_000)
    store._db.executemany(_INSERT, [((T0 + timedelta(hours=2, seconds=i)).isoformat(), int(Severity.INFO), "rare",  # noqa: SLF001
                                      f"<r{i}@example.net>", f"Rare {i}", f"Delivered rare {i}" if i % 2 else f"Kept {i}",
                                      "") for i in range(6)])
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001

    def searched(flt: EventFilter) -> tuple[list[str], tuple[int, bool], bool]:
        statements.clear()
        events, _ = store.page(flt, limit=50)
        count = store.count_at_least(flt, 10_000)
        by_account = [s for s in statements if "MATCH" in s]
        assert by_account  # the text index was used
        return [e.text for e in events], count, all("INDEXED BY events_account" in s for s in by_account)

    assert searched(EventFilter(text="delivered", account="rare")) == \
        (["Delivered rare 5", "Delivered rare 3", "Delivered rare 1"], (3, True), True)
    assert searched(EventFilter(text="delivered", account="nobody")) == ([], (0, True), True)
    texts, count, by_account = searched(EventFilter(text="delivered", account="acct1"))
    assert len(texts) == 50 and count == (1_000, True) and not by_account  # a busy account: the word's matches
    store.close()


@pytest.mark.parametrize("text", ["ꭰꭱꭲ", "ᎠᎡᎢ", "москва", "МОСКВА", "Ꮳ"])
def test_letters_newer_than_sqlites_case_tables_are_found_in_either_case(tmp_path: Path, text: str) -> None:
    """Cherokee small letters and the rounded Cyrillic forms came to Unicode after SQLite 3.40's case tables:
    the text index is asked for each form it tells apart, and finds what a case-blind ``in`` finds."""
    store = EventStore(tmp_path / "events.sqlite3")
    texts = ["Letter ᎠᎡᎢ upper", "Letter ꭰꭱꭲ lower", "Город Москва", "МОСКᲀА, as once written", "Ꮳ alone", "ꮳ too"]
    for body in texts:
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, body))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # noqa: SLF001
    flt = EventFilter(text=text)
    found, _ = store.page(flt, limit=50)
    want = [t for t in texts if text.casefold() in t.casefold()]
    assert sorted(e.text for e in found) == sorted(want) and len(want) >= 1
    assert any("MATCH" in s for s in statements) == (len(text) >= 3)  # the index answered (3 letters or more)
    assert store.count_at_least(flt, 100) == (len(want), True)
    store.close()
