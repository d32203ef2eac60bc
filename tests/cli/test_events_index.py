"""``pop3gui events`` over a long history: the text index, and a store of an earlier release."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pop3gui.core.events.store import EventStore

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, id INTEGER NOT NULL, severity INTEGER NOT NULL,
    account TEXT NOT NULL, uid TEXT NOT NULL, message_id TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
    cause TEXT NOT NULL, fix TEXT NOT NULL, transcript TEXT NOT NULL
);
"""
_INSERT = ("INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript) "
           "VALUES (?, 3002, ?, ?, '', '', ?, ?, ?, '', '')")


def pop3gui(home: Path, *args: str) -> list[str]:
    env = dict(os.environ, POP3GUI_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "pop3gui", "events", "--json", *args], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["text"] for line in out.stdout.splitlines()]


def rows(n: int) -> list[tuple[object, ...]]:
    return [((T0 + timedelta(seconds=i)).isoformat(), 40 if i % 10 == 0 else 20, f"acct{i % 3}",
             f"Subject {i}", f"Delivered message {i}", "Relay denied by the server" if i % 1000 == 500 else "")
            for i in range(n)]


def test_grep_and_limit_on_a_long_history(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    store = EventStore(tmp_path / "state" / "events.sqlite3")
    store._db.execute("BEGIN")  # noqa: SLF001 - set-up speed only
    store._db.executemany(_INSERT, rows(20_000))  # noqa: SLF001
    store._db.execute("COMMIT")  # noqa: SLF001
    store.close()
    assert pop3gui(tmp_path, "--limit", "3") == [f"Delivered message {i}" for i in (19_997, 19_998, 19_999)]
    assert pop3gui(tmp_path, "--grep", "RELAY DENIED", "--limit", "2") == [
        "Delivered message 18500", "Delivered message 19500"]
    assert len(pop3gui(tmp_path, "--grep", "relay denied", "--limit", "0")) == 20
    assert pop3gui(tmp_path, "--grep", "subject 42", "--limit", "0") == []  # the subject is not what --grep reads
    assert pop3gui(tmp_path, "--grep", "MESSAGE 1999", "--severity", "error", "--account", "acct1",
                   "--limit", "5") == ["Delivered message 19990"]


def test_a_store_of_an_earlier_release_answers_and_gains_the_index(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / "events.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany(_INSERT, rows(3000))
    db.commit()
    db.close()
    assert pop3gui(tmp_path, "--grep", "relay", "--limit", "0") == [
        "Delivered message 500", "Delivered message 1500", "Delivered message 2500"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT low FROM events_fts_state").fetchone()[0] == 3001  # the older part: built later
    db.close()
