"""Spool and quarantine on a real disk: where message bytes wait, and where they are kept."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from pop3gui.core.errors import StateError
from pop3gui.core.state.spool import IN_MEMORY_LIMIT, Quarantine, QuarantineRecord, Spool, SpoolWriter

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")

# Names a POP3 server or an admin may really use: UIDLs are any printable ASCII (RFC 1939).
ODD_NAMES = [
    "../../../etc/passwd", "..", ".", "a/b", "a\\b", "C:\\x", "con", "name with spaces", "x" * 5000,
    "caf\u00e9 \u2603", "bad\udcffbytes", "nul\x00byte", "", "-leading-dash", "*?<>|\"",
]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _record(qid: str, **kw: object) -> QuarantineRecord:
    values: dict[str, object] = dict(
        id=qid, account="alice", uid="UID-1", message_id="<m1@fabrikam.example>", sender="s@fabrikam.example",
        subject="Hello", date="Mon, 1 Jan 2024 10:00:00 +0000", recipients=["alice@contoso.com"],
        reason="refused", cause="The server refused it.", fix="Fix it.", transcript="<S>: 554 no",
        quarantined_at=1700000000.0,
    )
    values.update(kw)
    return QuarantineRecord(**values)  # type: ignore[arg-type]


# -- SpoolWriter -----------------------------------------------------------------------------


class _Target:
    """Where a writer puts a message: a file opened on demand, or the bytes it keeps."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = 0
        self.kept: list[bytes] = []

    def open_file(self) -> BinaryIO:
        self.opened += 1
        return self.path.open("wb")

    def keep(self, data: bytes) -> None:
        self.kept.append(data)


def test_a_small_message_stays_in_memory_and_is_handed_over_whole(tmp_path: Path) -> None:
    target = _Target(tmp_path / "m.eml")
    with SpoolWriter(100, target.open_file, target.keep) as writer:
        assert writer.write(b"Subject: hi\r\n") == 13
        writer.write(b"\r\nbody\r\n")
    assert target.kept == [b"Subject: hi\r\n\r\nbody\r\n"]
    assert target.opened == 0 and not target.path.exists()


def test_a_message_listed_as_big_goes_to_its_file_from_the_start(tmp_path: Path) -> None:
    target = _Target(tmp_path / "m.eml")
    with SpoolWriter(IN_MEMORY_LIMIT + 1, target.open_file, target.keep) as writer:
        assert target.opened == 1
        writer.write(b"small after all")
    assert target.kept == []
    assert target.path.read_bytes() == b"small after all"


def test_a_message_that_outgrows_its_listed_size_moves_to_its_file_in_order(tmp_path: Path) -> None:
    target = _Target(tmp_path / "m.eml")
    chunks = [bytes([65 + i % 26]) * 10_000 for i in range(IN_MEMORY_LIMIT // 10_000 + 3)]
    with SpoolWriter(10, target.open_file, target.keep) as writer:
        for chunk in chunks:
            assert writer.write(chunk) == len(chunk)
    assert target.opened == 1 and target.kept == []
    assert target.path.read_bytes() == b"".join(chunks)


def test_exactly_the_limit_stays_in_memory(tmp_path: Path) -> None:
    target = _Target(tmp_path / "m.eml")
    with SpoolWriter(IN_MEMORY_LIMIT, target.open_file, target.keep) as writer:
        writer.write(b"x" * IN_MEMORY_LIMIT)
    assert target.opened == 0 and len(target.kept[0]) == IN_MEMORY_LIMIT


def test_a_download_that_fails_hands_nothing_over(tmp_path: Path) -> None:
    target = _Target(tmp_path / "m.eml")
    with pytest.raises(ConnectionResetError):
        with SpoolWriter(100, target.open_file, target.keep) as writer:
            writer.write(b"half a mess")
            raise ConnectionResetError("the POP3 server went away")
    assert target.kept == []


def test_a_failed_download_to_a_file_closes_the_file(tmp_path: Path) -> None:
    handles: list[BinaryIO] = []

    def open_file() -> BinaryIO:
        handles.append((tmp_path / "m.eml").open("wb"))
        return handles[-1]

    with pytest.raises(ConnectionResetError):
        with SpoolWriter(IN_MEMORY_LIMIT * 2, open_file, lambda data: None):
            raise ConnectionResetError
    assert len(handles) == 1 and handles[0].closed


# -- Spool ------------------------------------------------------------------------------------


@posix_only
def test_spool_folders_are_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = Spool(tmp_path / "state" / "spool").folder("alice")
    finally:
        os.umask(old)
    assert _mode(folder) == 0o700
    assert _mode(folder.parent) == 0o700 and _mode(folder.parent.parent) == 0o700


@pytest.mark.parametrize("uid", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_an_odd_uidl_stays_a_file_name_inside_its_accounts_folder(tmp_path: Path, uid: str) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.path_for("alice", uid)
    assert path.parent == spool.folder("alice")
    assert path.suffix == ".eml" and len(path.name) <= 100
    assert "\x00" not in path.name
    path.write_bytes(b"x")  # the file system takes the name
    assert spool.leftovers() == [path]


@pytest.mark.parametrize("account", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_an_odd_account_name_stays_one_folder_under_the_spool(tmp_path: Path, account: str) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.folder(account).parent == spool.root


def test_names_that_clean_up_alike_stay_apart(tmp_path: Path) -> None:
    """UIDLs are case-sensitive, and case-insensitive file systems must not merge them either."""
    spool = Spool(tmp_path / "spool")
    uids = ["a/b", "a_b", "a\\b", "a b", "AbC", "abc", "ABC"]
    names = {spool.path_for("alice", uid).name.lower() for uid in uids}
    assert len(names) == len(uids)
    folders = {spool.folder(name).name.lower() for name in ("Sales", "sales", "sales/", "sales_")}
    assert len(folders) == 4


def test_clear_removes_one_accounts_leftovers_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for uid in ("1", "2", "3"):
        spool.path_for("alice", uid).write_bytes(b"m")
    spool.path_for("bob", "1").write_bytes(b"m")

    assert spool.clear("alice") == 3
    assert spool.leftovers() == [spool.path_for("bob", "1")]
    assert spool.clear("alice") == 0


def test_leftovers_of_a_spool_never_created_are_none(tmp_path: Path) -> None:
    assert Spool(tmp_path / "never").leftovers() == []


def test_a_file_in_the_spools_place_is_a_state_error_with_its_fix(tmp_path: Path) -> None:
    (tmp_path / "spool").write_text("in the way")
    with pytest.raises(StateError) as caught:
        Spool(tmp_path / "spool").folder("alice")
    assert str(tmp_path / "spool") in str(caught.value)
    assert caught.value.cause and "POP3 server" in caught.value.fix


# -- Quarantine ---------------------------------------------------------------------------


def test_a_quarantined_message_is_kept_exactly_with_its_record(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    original = b"Subject: caf\xc3\xa9\r\n\r\n.\r\nno final newline"
    record = _record("q1")

    path = quarantine.add(original, record)

    assert path == quarantine.message_path("q1") and path.read_bytes() == original
    assert quarantine.get("q1") == record
    assert json.loads((tmp_path / "quarantine" / "q1.json").read_text("utf-8"))["transcript"] == "<S>: 554 no"
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == ["q1.eml", "q1.json"]


def test_a_spool_file_is_copied_in_and_left_where_it_was(tmp_path: Path) -> None:
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(b"x" * (IN_MEMORY_LIMIT * 3))
    quarantine = Quarantine(tmp_path / "quarantine")

    quarantine.add(spooled, _record("q1"))

    assert quarantine.message_path("q1").read_bytes() == spooled.read_bytes()
    assert spooled.exists()


@posix_only
def test_quarantine_files_are_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "state" / "quarantine")
    old = os.umask(0)
    try:
        quarantine.add(b"secret mail", _record("q1"))
    finally:
        os.umask(old)
    assert _mode(quarantine.root) == 0o700
    assert _mode(quarantine.message_path("q1")) == 0o600
    assert _mode(quarantine.root / "q1.json") == 0o600


def test_records_lists_every_readable_record_in_id_order_and_skips_damaged_ones(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    for qid in ("20240102-b", "20240101-a", "20240103-c"):
        quarantine.add(b"m", _record(qid))
    (quarantine.root / "20240101-z.json").write_text("{not json")
    (quarantine.root / "20240101-y.json").write_text(json.dumps({"id": "20240101-y"}))  # fields missing

    assert [r.id for r in quarantine.records()] == ["20240101-a", "20240102-b", "20240103-c"]


def test_records_of_a_quarantine_never_created_are_none(tmp_path: Path) -> None:
    assert list(Quarantine(tmp_path / "never").records()) == []


def test_adding_the_same_id_again_replaces_the_message_and_its_record(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    quarantine.add(b"first", _record("q1", reason="first"))
    quarantine.add(b"second", _record("q1", reason="second"))
    assert quarantine.message_path("q1").read_bytes() == b"second"
    assert quarantine.get("q1").reason == "second"
    assert [r.id for r in quarantine.records()] == ["q1"]


@pytest.mark.parametrize("qid", ["gone", "../spool/x", ""])
def test_get_of_a_record_that_is_not_there_is_a_state_error_with_its_fix(tmp_path: Path, qid: str) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    quarantine.add(b"m", _record("present"))
    with pytest.raises(StateError) as caught:
        quarantine.get(qid)
    assert caught.value.cause and "Refresh" in caught.value.fix


def test_get_of_a_damaged_record_is_a_state_error(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    quarantine.add(b"m", _record("q1"))
    (quarantine.root / "q1.json").write_text(json.dumps({**json.loads((quarantine.root / "q1.json").read_text()),
                                                         "unexpected": 1}))
    with pytest.raises(StateError, match="q1"):
        quarantine.get("q1")


def test_remove_deletes_the_message_and_its_record_and_may_be_repeated(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    quarantine.add(b"one", _record("q1"))
    quarantine.add(b"two", _record("q2"))

    quarantine.remove("q1")
    quarantine.remove("q1")

    assert [r.id for r in quarantine.records()] == ["q2"]
    assert not quarantine.message_path("q1").exists() and quarantine.message_path("q2").read_bytes() == b"two"


@pytest.mark.parametrize("uid", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_a_new_id_for_an_odd_account_and_uidl_is_one_file_name_in_the_quarantine(tmp_path: Path, uid: str) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    qid = quarantine.new_id("sales/../x", uid)
    path = quarantine.add(b"m", _record(qid, uid=uid))
    assert path.parent == quarantine.root and len(path.name) <= 120
    assert [(r.id, r.uid) for r in quarantine.records()] == [(qid, uid)]


def test_new_ids_tell_apart_uidls_that_clean_up_alike(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    ids = {quarantine.new_id("alice", uid).lower() for uid in ("a/b", "a_b", "AbC", "abc")}
    assert len(ids) == 4


def test_a_quarantine_that_cannot_be_written_is_a_state_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "quarantine").write_text("in the way")
    quarantine = Quarantine(tmp_path / "quarantine")
    with pytest.raises(StateError) as caught:
        quarantine.add(b"m", _record("q1"))
    assert str(tmp_path / "quarantine") in str(caught.value)
    assert "POP3 server" in caught.value.fix


def test_a_record_survives_the_round_trip_with_unusual_text(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path / "quarantine")
    record = _record("q1", subject="=?utf-8?q?x?= \u2603 \"quoted\"\nsecond line", recipients=[],
                     transcript="<C>: AUTH **** (redacted)\n<S>: 235 ok")
    quarantine.add(b"m", record)
    assert quarantine.get("q1") == record

