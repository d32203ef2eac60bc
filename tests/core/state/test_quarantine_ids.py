"""Quarantine IDs: a new one never takes an existing entry's ID."""

from __future__ import annotations

import time
from pathlib import Path

from pop3gui.core.state.spool import Quarantine, QuarantineRecord


def record(record_id: str) -> QuarantineRecord:
    return QuarantineRecord(record_id, "alice", "uid-1", "<m@x>", "a@x", "s", "", ["b@x"], "r", "c", "f", "",
                            time.time())


def test_a_message_quarantined_again_within_the_second_gets_its_own_id(tmp_path: Path) -> None:
    """A resubmission refused again adds the new entry, then removes the old one: their IDs must differ."""
    q = Quarantine(tmp_path)
    ids = []
    for n in range(3):
        ids.append(q.new_id("alice", "uid-1"))
        q.add(f"message {n}".encode(), record(ids[-1]))
    assert len(set(ids)) == 3
    q.remove(ids[0])
    assert [r.id for r in q.records()] == sorted(ids[1:])
    assert q.message_path(ids[2]).read_bytes() == b"message 2"
