"""Journal pruning after every cycle: old delivery rows go, rows of mail still on a server stay, space comes back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pop3gui.core.state.journal import KEEP_DELIVERIES_DAYS, Journal, prune_journal

DAY = 86400.0
T0 = 1_900_000_000.0


def delivered(journal: Journal, account: str, uid: str, key: str, at: float, *, forget: bool) -> None:
    """A message handled at *at*; with *forget*, the server has deleted it since (its message row is gone)."""
    journal.now = lambda: at
    journal.begin(account, uid, key, 100)
    journal.finish(account, uid, key, 100, "delivered", ["alice@contoso.com"])
    if forget:
        journal.forget(account, [uid])


def deliveries(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in db.execute("SELECT message_key FROM deliveries")}
    finally:
        db.close()


def test_old_rows_of_deleted_mail_go_and_rows_of_kept_mail_stay(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    old = T0 - (KEEP_DELIVERIES_DAYS + 1) * DAY
    delivered(journal, "alice", "gone", "v2:gone", old, forget=True)  # deleted on the server long ago
    delivered(journal, "alice", "kept", "v2:kept", old, forget=False)  # leave_on_server: still listed
    delivered(journal, "imap", "7", "v2:imap-kept", old, forget=False)  # an IMAP folder with "keep"
    delivered(journal, "alice", "recent", "v2:recent", T0 - DAY, forget=True)  # inside the duplicate window
    result = prune_journal(path, T0)
    assert result.deliveries == 1
    assert deliveries(path) == {"v2:kept", "v2:imap-kept", "v2:recent"}
    # The kept mail is still known by its content, however long ago it was delivered.
    journal.now = lambda: T0
    assert journal.earlier_delivery("v2:kept", "alice@contoso.com", days=10_000) is not None
    journal.close()


def test_a_message_listed_again_between_the_read_and_the_delete_keeps_its_row(tmp_path: Path) -> None:
    """The delete checks again: a message whose row came back (a renumbered folder) is not pruned."""
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    old = T0 - (KEEP_DELIVERIES_DAYS + 1) * DAY
    delivered(journal, "alice", "u1", "v2:back", old, forget=True)
    journal.now = lambda: T0
    journal.begin("alice", "u9", "v2:back", 100)  # the same message, listed again
    assert prune_journal(path, T0).deliveries == 0
    assert deliveries(path) == {"v2:back"}
    journal.close()


def test_a_backlog_goes_in_bounded_steps_and_the_file_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    old = T0 - (KEEP_DELIVERIES_DAYS + 5) * DAY
    journal._db.execute("BEGIN")
    for i in range(30_000):
        journal._db.execute("INSERT INTO deliveries VALUES (?,?,?,?)",
                            ("alice", f"v2:{i:064d}", f"user{i}@contoso.com", old + i))
    journal._db.execute("COMMIT")
    journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    first = prune_journal(path, T0)
    assert first.deliveries == 20_000 and first.backlog
    second = prune_journal(path, T0)
    assert second.deliveries == 10_000 and not second.backlog
    assert deliveries(path) == set()
    assert path.stat().st_size < before / 4
    journal.close()


def test_every_new_journal_gives_space_back_and_an_old_one_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    assert int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
    names = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"deliveries_by_time", "messages_by_key"} <= names
    db.close()
    assert prune_journal(tmp_path / "missing.sqlite3", T0).deliveries == 0
