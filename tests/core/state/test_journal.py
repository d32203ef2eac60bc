"""The journal is the promise that nothing is delivered twice or deleted unhandled."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pop3gui.core.errors import StateError
from pop3gui.core.state.journal import HANDLED, OVERSIZE, SUBMITTING, Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


def test_outcome_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    j.begin("alice", "uid1", "<m1@x>", 100)
    assert j.get("alice", "uid1").state == SUBMITTING
    j.finish("alice", "uid1", "<m1@x>", 100, "delivered", ["Alice@Contoso.com"])
    j.close()
    again = Journal(path)
    record = again.get("alice", "uid1")
    assert record is not None and record.state == HANDLED and record.outcome == "delivered"
    assert again.earlier_delivery("<m1@x>", "alice@contoso.com") is not None
    again.close()


def test_an_outcome_survives_a_kill_before_it_is_made_durable(tmp_path: Path) -> None:
    """finish() commits at once (only the fsync waits for make_durable): a killed process keeps it."""
    path = tmp_path / "journal.sqlite3"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pop3gui.core.state.journal import Journal\n"
        "j = Journal(Path(sys.argv[1]))\n"
        "j.finish('alice', 'uid1', '<m1@x>', 100, 'delivered', ['alice@contoso.com'])\n"
        "assert j.unsynced == 1\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    again = Journal(path)
    record = again.get("alice", "uid1")
    assert record is not None and record.state == HANDLED
    assert again.earlier_delivery("<m1@x>", "alice@contoso.com") is not None
    again.close()


def test_make_durable_covers_every_outcome_so_far(journal: Journal, tmp_path: Path) -> None:
    journal.finish("a", "u1", "<m1@x>", 1, "delivered", ["bob@contoso.com"])
    journal.finish("a", "u2", "<m2@x>", 1, "quarantined")
    assert journal.unsynced == 2
    journal.make_durable()
    assert journal.unsynced == 0
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert db.execute("SELECT count(*) FROM sync_marks").fetchone()[0] == 1
    db.close()


def test_journal_is_durable_wal(journal: Journal, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_deliveries_are_remembered_per_message_and_recipient_across_accounts(journal: Journal) -> None:
    journal.finish("a", "u", "v2:k", 1, "delivered", ["bob@contoso.com"])
    earlier = journal.earlier_delivery("v2:k", "BOB@contoso.com")
    assert earlier is not None and earlier.account == "a"  # whichever mailbox the next copy comes from
    assert journal.earlier_delivery("v2:k", "carol@contoso.com") is None
    assert journal.earlier_delivery("v2:other", "bob@contoso.com") is None
    journal.now = lambda: 10**12  # far in the future: outside the 14-day window
    assert journal.earlier_delivery("v2:k", "bob@contoso.com") is None


# The schema of journals written before deliveries were keyed by content.
_OLD_SCHEMA = """
CREATE TABLE messages (account TEXT NOT NULL, uid TEXT NOT NULL, message_key TEXT NOT NULL,
    size INTEGER NOT NULL, state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '', first_seen REAL NOT NULL,
    handled_at REAL, PRIMARY KEY (account, uid));
CREATE TABLE deliveries (account TEXT NOT NULL, message_key TEXT NOT NULL, recipient TEXT NOT NULL,
    delivered_at REAL NOT NULL, PRIMARY KEY (account, message_key, recipient));
CREATE TABLE sync_marks (id INTEGER PRIMARY KEY CHECK (id = 1), synced_at REAL NOT NULL);
"""


def _old_journal(path: Path) -> None:
    import time

    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    now = time.time()
    db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?)", [
        ("a", "done", "<same@x>", 10, HANDLED, "delivered", now, now),
        ("a", "half", "<half@x>", 10, SUBMITTING, "", now, None),
    ])
    db.executemany("INSERT INTO deliveries VALUES (?,?,?,?)", [
        ("a", "<same@x>", "bob@contoso.com", now),
        ("a", "<half@x>", "bob@contoso.com", now),
    ])
    db.commit()
    db.close()


def test_a_journal_of_the_old_format_opens_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    _old_journal(path)
    journal = Journal(path)
    try:
        done = journal.get("a", "done")
        assert done is not None and done.state == HANDLED and done.message_id == ""  # still skipped when listed
        # An old row never holds back another message, even one sharing its Message-ID ...
        assert journal.earlier_delivery("<same@x>".lower(), "carol@contoso.com") is None
        assert not journal.delivered_under_old_key("a", "new-uid", "bob@contoso.com")
        assert not journal.delivered_under_old_key("other", "half", "bob@contoso.com")
        # ... but spares a recipient a second copy of the very message it was recorded for.
        journal.begin("a", "half", "v2:fingerprint", 10, message_id="<half@x>")
        assert journal.delivered_under_old_key("a", "half", "bob@contoso.com")
        assert not journal.delivered_under_old_key("a", "half", "carol@contoso.com")
        journal.finish("a", "half", "v2:fingerprint", 10, "delivered", ["carol@contoso.com"], message_id="<half@x>")
        assert journal.get("a", "half").message_key == "v2:fingerprint"
        assert not journal.delivered_under_old_key("a", "half", "bob@contoso.com")  # handled: nothing in progress
    finally:
        journal.close()
    again = Journal(path)  # migrating twice is harmless
    try:
        assert again.get("a", "half").message_id == "<half@x>"
    finally:
        again.close()


def test_oversize_is_noted_once(journal: Journal) -> None:
    assert journal.note_oversize("a", "big", 10**9) is True
    assert journal.note_oversize("a", "big", 10**9) is False
    assert journal.get("a", "big").state == OVERSIZE


def test_forget_absent_keeps_deliveries(journal: Journal) -> None:
    journal.finish("a", "gone", "<g@x>", 1, "delivered", ["bob@contoso.com"])
    journal.finish("a", "kept", "<k@x>", 1, "delivered", ["bob@contoso.com"])
    assert journal.forget_absent("a", ["kept"]) == 1
    assert journal.get("a", "gone") is None and journal.get("a", "kept") is not None
    assert journal.earlier_delivery("<g@x>", "bob@contoso.com") is not None


def test_unwritable_state_folder_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError) as info:
        Journal(blocker / "journal.sqlite3")
    assert info.value.fix


def test_forgetting_a_deleted_uidl_keeps_content_deliveries_and_drops_uid_ones(journal: Journal) -> None:
    from pop3gui.core.state.journal import uid_key

    journal.finish("a", "1", "v2:content", 1, "delivered", ["bob@contoso.com"])
    journal.finish("a", "2", uid_key("a", "2", "fp"), 1, "delivered", ["bob@contoso.com"])
    journal.forget("a", ["1", "2"])
    assert journal.get("a", "1") is None and journal.get("a", "2") is None
    assert journal.earlier_delivery("v2:content", "bob@contoso.com") is not None  # a re-sent copy is caught
    assert journal.earlier_delivery(uid_key("a", "2", "fp"), "bob@contoso.com") is None  # a reused UIDL: new
    assert uid_key("a:b", "c", "fp") != uid_key("a", "b:c", "fp")


def test_a_message_marked_deleting_is_handled_again_only_if_restored(journal: Journal) -> None:
    from pop3gui.core.state.journal import DELETING

    journal.finish("a", "1", "v2:k", 1, "delivered", ["bob@contoso.com"])
    journal.begin("a", "2", "v2:j", 1)  # in progress: never marked
    journal.mark_deleting("a", ["1", "2"])
    assert journal.get("a", "1").state == DELETING and journal.get("a", "2").state == SUBMITTING
    journal.restore_handled("a", "1")
    assert journal.get("a", "1").state == HANDLED
