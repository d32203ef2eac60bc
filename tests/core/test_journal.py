"""The journal is the promise that nothing is delivered twice or deleted unhandled."""

from __future__ import annotations

import sqlite3
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
