"""The journal is the promise that nothing is delivered twice or deleted unhandled."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pop3gui.core.errors import StateError
from pop3gui.core.journal import HANDLED, OVERSIZE, SUBMITTING, Journal


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
    assert again.delivered_recently("alice", "<m1@x>", "alice@contoso.com")
    again.close()


def test_an_outcome_survives_a_kill_before_it_is_made_durable(tmp_path: Path) -> None:
    """finish() commits at once (only the fsync waits for make_durable): a killed process keeps it."""
    path = tmp_path / "journal.sqlite3"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pop3gui.core.journal import Journal\n"
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
    assert again.delivered_recently("alice", "<m1@x>", "alice@contoso.com")
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


def test_duplicates_are_per_account_recipient_and_window(journal: Journal) -> None:
    journal.finish("a", "u", "<m@x>", 1, "delivered", ["bob@contoso.com"])
    assert journal.delivered_recently("a", "<m@x>", "BOB@contoso.com")
    assert not journal.delivered_recently("a", "<m@x>", "carol@contoso.com")
    assert not journal.delivered_recently("other", "<m@x>", "bob@contoso.com")
    journal.now = lambda: 10**12  # far in the future: outside the 14-day window
    assert not journal.delivered_recently("a", "<m@x>", "bob@contoso.com")


def test_oversize_is_noted_once(journal: Journal) -> None:
    assert journal.note_oversize("a", "big", 10**9) is True
    assert journal.note_oversize("a", "big", 10**9) is False
    assert journal.get("a", "big").state == OVERSIZE


def test_forget_absent_keeps_deliveries(journal: Journal) -> None:
    journal.finish("a", "gone", "<g@x>", 1, "delivered", ["bob@contoso.com"])
    journal.finish("a", "kept", "<k@x>", 1, "delivered", ["bob@contoso.com"])
    assert journal.forget_absent("a", ["kept"]) == 1
    assert journal.get("a", "gone") is None and journal.get("a", "kept") is not None
    assert journal.delivered_recently("a", "<g@x>", "bob@contoso.com")


def test_unwritable_state_folder_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError) as info:
        Journal(blocker / "journal.sqlite3")
    assert info.value.fix
