"""One message in flight: its identity, its duplicate key, and forgetting its downloaded copy."""

from __future__ import annotations

from pathlib import Path

from pop3gui.core.engine.message import InFlight, duplicate_key
from pop3gui.core.state.journal import KEY_PREFIX, UID_KEY_PREFIX

DATED = (b"Return-Path: <sender@fabrikam.example>\r\n"
         b"From: Sender <sender@fabrikam.example>\r\n"
         b"To: alice@isp.example\r\n"
         b"Subject: Quarterly figures\r\n"
         b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
         b"Message-ID: <figures@fabrikam.example>\r\n"
         b"\r\n"
         b"The figures.\r\n")
UNDATED = b"From: scanner@contoso.com\r\nTo: alice@isp.example\r\nSubject: Scan\r\n\r\nThe printer scanned 1 page.\r\n"


def in_memory(data: bytes, tmp_path: Path, *, uid: str = "uid-1", number: int = 1) -> InFlight:
    return InFlight(number, uid, len(data), tmp_path / f"{uid}.eml", data=data)


def spooled(data: bytes, tmp_path: Path, *, uid: str = "uid-1") -> InFlight:
    spool = tmp_path / f"spooled-{uid}.eml"
    spool.write_bytes(data)
    return InFlight(1, uid, len(data), spool)


def test_identify_reads_the_identity_once(tmp_path: Path) -> None:
    msg = in_memory(DATED, tmp_path)

    headers = msg.identify("alice")

    assert msg.message_id == "<figures@fabrikam.example>"
    assert msg.subject == "Quarterly figures"
    assert msg.sender == "sender@fabrikam.example"
    assert msg.key.startswith(KEY_PREFIX) and not msg.key.startswith(UID_KEY_PREFIX)
    key = msg.key
    msg.data = DATED.replace(b"Quarterly figures", b"Something else").replace(b"<figures@", b"<other@")
    assert msg.identify("alice") is headers
    assert (msg.message_id, msg.subject, msg.key) == ("<figures@fabrikam.example>", "Quarterly figures", key)


def test_a_message_without_return_path_has_the_null_sender(tmp_path: Path) -> None:
    msg = in_memory(UNDATED, tmp_path)
    msg.identify("alice")
    assert msg.sender == "" and msg.message_id == "" and msg.subject == "Scan"


def test_the_same_message_in_two_mailboxes_has_one_key(tmp_path: Path) -> None:
    """A copy in another mailbox, under another UIDL and number, is the same message."""
    first = in_memory(DATED, tmp_path, uid="alice-17", number=3)
    second = in_memory(DATED, tmp_path, uid="catchall-4", number=9)
    first.identify("alice")
    second.identify("catch-all")
    assert first.key == second.key
    other = in_memory(DATED.replace(b"The figures.", b"The figures, corrected."), tmp_path, uid="alice-18")
    other.identify("alice")
    assert other.key != first.key, "another body is another message"


def test_a_message_with_neither_message_id_nor_date_is_bound_to_its_uidl(tmp_path: Path) -> None:
    first = in_memory(UNDATED, tmp_path, uid="1")
    again = in_memory(UNDATED, tmp_path, uid="1")
    later = in_memory(UNDATED, tmp_path, uid="2")
    for msg in (first, again, later):
        msg.identify("alice")

    assert first.key.startswith(UID_KEY_PREFIX)
    assert first.key == again.key, "a retry of the very same POP3 message matches itself"
    assert later.key != first.key, "the same text under another UIDL is another message"
    assert duplicate_key("alice", first, dated=True) == duplicate_key("alice", later, dated=True)


def test_a_dated_message_without_message_id_is_keyed_by_content(tmp_path: Path) -> None:
    dated = UNDATED.replace(b"Subject: Scan\r\n", b"Subject: Scan\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n")
    first, later = in_memory(dated, tmp_path, uid="1"), in_memory(dated, tmp_path, uid="2")
    first.identify("alice")
    later.identify("alice")
    assert first.key == later.key and not first.key.startswith(UID_KEY_PREFIX)


def test_a_copy_in_memory_and_a_spooled_copy_have_the_same_key(tmp_path: Path) -> None:
    for data in (DATED, UNDATED):
        memory, disk = in_memory(data, tmp_path), spooled(data, tmp_path)
        memory.identify("alice")
        disk.identify("alice")
        assert memory.key == disk.key
        assert (memory.message_id, memory.subject, memory.sender) == (disk.message_id, disk.subject, disk.sender)
        assert memory.read_bytes() == disk.read_bytes() == data


def test_discard_removes_the_spool_file(tmp_path: Path) -> None:
    msg = spooled(DATED, tmp_path)
    assert msg.spool.exists()
    msg.discard()
    assert not msg.spool.exists()
    msg.discard()  # forgetting twice is harmless


def test_discard_drops_the_copy_in_memory(tmp_path: Path) -> None:
    msg = in_memory(DATED, tmp_path)
    assert msg.content() == DATED
    msg.discard()
    assert msg.data is None
