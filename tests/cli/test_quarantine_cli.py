"""``pop3gui quarantine`` on a real quarantine: messages Postfix refused in a real cycle."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pop3gui.core.events.store import EventStore
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.spool import Quarantine
from tests.cli.terminal import run_in_pty
from tests.conftest import Pop3User
from tests.support.office import ADMIN, Office, make_message

pytestmark = pytest.mark.servers


def pop3gui(*args: str, text: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def pop3gui_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], capture_output=True, env=dict(os.environ),
                          timeout=120)


@pytest.fixture
def stuck(office: Office, pop3_user: Pop3User) -> list[bytes]:
    """Two messages nobody accepts (the mapping and the undeliverable mailbox are foreign), quarantined by a run."""
    originals = [make_message(to="x@isp.example", subject=s, body="Grüße\r\n") for s in ("first", "second")]
    for original in originals:
        office.isp.deliver(pop3_user.name, original)
    account = office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com")
    office.use(account, delivery=replace(office.config.delivery, undeliverable_to="postmaster@fabrikam.com"))
    run = pop3gui("run", "--once", "-q")
    assert run.returncode == 1, run.stdout + run.stderr
    assert office.isp.messages(pop3_user.name) == []  # deleted on the ISP's server: quarantine is the only copy
    assert len(records(office)) == 2
    return originals


def records(office: Office) -> dict[str, str]:
    """Subject -> ID of what is in quarantine."""
    return {r.subject: r.id for r in Quarantine(office.paths.quarantine_dir).records()}


def fix_the_mapping(office: Office) -> None:
    [account] = office.config.accounts
    office.use(replace(account, deliver_to="alice@contoso.com"),
               delivery=replace(office.config.delivery, undeliverable_to=ADMIN))


# --- list and show ------------------------------------------------------------------------

def test_list_has_a_line_per_message(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    ids = records(office)
    for subject in ("first", "second"):
        [line] = [ln for ln in lines if ln.startswith(ids[subject])]
        assert "alice" in line and "sender@fabrikam.example" in line and f"'{subject}'" in line
        assert "fabrikam.com" in line  # the reason names the refused recipient's domain
    assert lines[-1].startswith("2 message(s) in quarantine")


def test_list_json_is_one_document(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "list", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["count"] == 2 and doc["quarantine"] == str(office.paths.quarantine_dir)
    assert {m["subject"] for m in doc["messages"]} == {"first", "second"}
    message = doc["messages"][0]
    assert set(message) == {"id", "account", "uid", "message_id", "sender", "subject", "date", "recipients",
                            "reason", "cause", "fix", "quarantined_at", "age_seconds", "file", "size", "problem"}
    assert message["account"] == "alice" and message["problem"] is None
    assert message["size"] == Path(message["file"]).stat().st_size and 0 <= message["age_seconds"] < 300
    assert message["cause"] and message["fix"]


def test_an_empty_quarantine(office: Office) -> None:
    out = pop3gui("quarantine", "list")
    assert out.returncode == 0 and "The quarantine is empty" in out.stdout
    assert json.loads(pop3gui("quarantine", "list", "--json").stdout) == {
        "quarantine": str(office.paths.quarantine_dir), "count": 0, "messages": []}


def test_show_gives_the_record_and_the_headers(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "show", records(office)["first"])
    assert out.returncode == 0, out.stderr
    assert "Reason:" in out.stdout and "Cause:" in out.stdout and "Fix:" in out.stdout
    assert "Recipients:" in out.stdout and "Account: alice" in out.stdout
    assert "Headers:" in out.stdout and "    Subject: first" in out.stdout
    assert "Transcript:" in out.stdout and "RCPT TO" in out.stdout
    assert "Grüße" not in out.stdout  # the headers, not the body


def test_show_raw_is_the_eml_unchanged(office: Office, stuck: list[bytes]) -> None:
    record_id = records(office)["second"]
    out = pop3gui_bytes("quarantine", "show", record_id, "--raw")
    assert out.returncode == 0
    assert out.stdout == (office.paths.quarantine_dir / f"{record_id}.eml").read_bytes()
    assert stuck[1].split(b"\r\n\r\n", 1)[1] in out.stdout and b"\r\n" in out.stdout


def test_show_json(office: Office, stuck: list[bytes]) -> None:
    doc = json.loads(pop3gui("quarantine", "show", records(office)["first"], "--json").stdout)
    assert doc["subject"] == "first" and "RCPT TO" in doc["transcript"]
    assert ["Subject", "first"] in doc["headers"]


# --- IDs ---------------------------------------------------------------------------------------

def test_a_unique_prefix_names_a_message(office: Office, stuck: list[bytes]) -> None:
    ids = records(office)
    a, b = ids["first"], ids["second"]
    common = next(i for i in range(len(a)) if a[i] != b[i])
    out = pop3gui("quarantine", "show", a[:common + 1])
    assert out.returncode == 0 and "Subject: first" in out.stdout


def test_an_ambiguous_prefix_is_refused(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "show", "2")
    assert out.returncode == 2
    assert "more than one message begins with 2 (2 messages)" in out.stderr
    assert "pop3gui quarantine list" in out.stderr and "Traceback" not in out.stderr


def test_an_unknown_id_says_how_to_find_ids(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "export", "nosuchid", "--to", str(office.home / "out"))
    assert out.returncode == 2
    assert "no quarantined message has the ID nosuchid" in out.stderr
    assert "`pop3gui quarantine list`" in out.stderr
    assert not (office.home / "out").exists()


# --- export ------------------------------------------------------------------------------------

def test_export_copies_byte_for_byte_and_keeps_the_message(office: Office, stuck: list[bytes]) -> None:
    ids = records(office)
    target = office.home / "exported" / "deep"
    out = pop3gui("quarantine", "export", ids["first"], ids["second"], "--to", str(target))
    assert out.returncode == 0, out.stderr
    for record_id in ids.values():
        kept = office.paths.quarantine_dir / f"{record_id}.eml"
        assert (target / f"{record_id}.eml").read_bytes() == kept.read_bytes()
        assert kept.exists()
    assert records(office) == ids

    single = office.home / "one.eml"
    out = pop3gui("quarantine", "export", ids["first"][:30], "-o", str(single))
    assert out.returncode == 0 and single.read_bytes() == (target / f"{ids['first']}.eml").read_bytes()


def test_export_to_an_unwritable_place_loses_nothing(office: Office, stuck: list[bytes]) -> None:
    ids = records(office)
    in_the_way = office.home / "a-file"
    in_the_way.write_text("not a folder")
    before = {p.name: p.read_bytes() for p in office.paths.quarantine_dir.iterdir()}

    out = pop3gui("quarantine", "export", ids["first"], "--to", str(in_the_way / "sub"))
    assert out.returncode == 1
    assert f"cannot create the folder {in_the_way / 'sub'}" in out.stderr and "Fix:" in out.stderr
    out = pop3gui("quarantine", "export", ids["first"], "-o", str(office.home / "missing-dir" / "x.eml"))
    assert out.returncode == 1
    assert "cannot export" in out.stderr and "still in quarantine" in out.stderr
    assert "Traceback" not in out.stderr

    assert {p.name: p.read_bytes() for p in office.paths.quarantine_dir.iterdir()} == before
    assert in_the_way.read_text() == "not a folder"


def test_export_o_takes_one_message(office: Office, stuck: list[bytes]) -> None:
    ids = list(records(office).values())
    out = pop3gui("quarantine", "export", *ids, "-o", str(office.home / "x.eml"))
    assert out.returncode == 2 and "--to DIR" in out.stderr
    assert not (office.home / "x.eml").exists()


# --- delete ------------------------------------------------------------------------------------

def test_delete_without_a_terminal_needs_yes(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "delete", "--all")
    assert out.returncode == 1 and "--yes" in out.stderr and "not a terminal" in out.stderr
    assert len(records(office)) == 2

    first = records(office)["first"]
    out = pop3gui("quarantine", "delete", first, "--yes")
    assert out.returncode == 0, out.stderr
    assert list(records(office)) == ["second"]
    events = pop3gui("events", "--grep", "Deleted the quarantined message")
    assert first in events.stdout and "pop3gui quarantine delete" in events.stdout, events.stdout
    assert sorted(p.suffix for p in office.paths.quarantine_dir.iterdir()) == [".eml", ".json"]


def test_delete_at_a_terminal_asks(office: Office, stuck: list[bytes]) -> None:
    code, screen = run_in_pty("quarantine", "delete", "--all", answer=b"n\n")
    assert code == 1 and b"Delete these 2 message(s) for good?" in screen and b"Nothing deleted." in screen
    assert len(records(office)) == 2

    code, screen = run_in_pty("quarantine", "delete", records(office)["second"], answer=b"y\n")
    assert code == 0 and b"deleted." in screen, screen.decode()
    assert list(records(office)) == ["first"]


def test_delete_wants_ids_or_all(office: Office, stuck: list[bytes]) -> None:
    out = pop3gui("quarantine", "delete", "--yes")
    assert out.returncode == 2 and "give the IDs of the messages or --all" in out.stderr
    out = pop3gui("quarantine", "delete", "--all", records(office)["first"], "--yes")
    assert out.returncode == 2 and "not both" in out.stderr
    assert len(records(office)) == 2


# --- resubmit ------------------------------------------------------------------------------------

def test_resubmit_before_the_fix_stays_and_exits_1(office: Office, stuck: list[bytes]) -> None:
    old = records(office)["first"]
    time.sleep(1.1)  # a new quarantine ID is stamped to the second
    out = pop3gui("quarantine", "resubmit", old)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{old}: Refused again" in out.stdout and "0 of 1 left the quarantine; 1 stayed." in out.stdout
    now = records(office)
    assert set(now) == {"first", "second"} and now["first"] != old  # kept, with the new reason
    assert office.local.delivered() == []


def test_resubmit_after_the_fix_delivers_and_records_events(office: Office, stuck: list[bytes]) -> None:
    fix_the_mapping(office)
    out = pop3gui("quarantine", "resubmit", "--all")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": Delivered.") == 2 and "2 of 2 left the quarantine." in out.stdout
    delivered = office.local.wait_for_delivered(2)
    assert sorted(str(m["Subject"]) for m in delivered) == ["first", "second"]
    assert all(str(m["Delivered-To"]) == "alice@contoso.com" for m in delivered)
    assert records(office) == {} and list(office.paths.quarantine_dir.iterdir()) == []
    store = EventStore(office.paths.events_db)
    try:
        done = [e for e in store.all() if int(e.id) == 3002]
    finally:
        store.close()
    assert sorted(e.subject for e in done) == ["first", "second"]  # as the window's Resubmit records them


def test_resubmit_beside_a_running_runner(office: Office, stuck: list[bytes]) -> None:
    """The window resubmits while its runner works; so does the command, and says so."""
    fix_the_mapping(office)
    with RunnerLock(office.paths.lock_file):
        out = pop3gui("quarantine", "resubmit", records(office)["first"], "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"a pop3gui runner (pid {os.getpid()}) is working on" in out.stderr
    [line] = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert line["result"] == "Delivered." and line["stayed"] is False
    assert list(records(office)) == ["second"]


def test_resubmit_holds_the_runner_lock_meanwhile(office: Office, stuck: list[bytes]) -> None:
    """No runner: the command holds the lock, so a cycle cannot start in the middle of a resubmission.

    The local server here takes the connection and never greets, so the command
    is certainly still submitting while the lock is looked at (until its timeout).
    """
    fix_the_mapping(office)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        office.use(*office.config.accounts,
                   smtp=replace(office.config.smtp, port=silent.getsockname()[1], security="none", timeout_s=2))
        proc = subprocess.Popen([sys.executable, "-m", "pop3gui", "quarantine", "resubmit", "--all"],
                                env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        saw_lock = False
        while proc.poll() is None and not saw_lock:
            # The holder writes its pid once it has the lock; read, never taken here: taking it, even for a
            # moment, could make the command find the folder busy and resubmit beside a "runner".
            with contextlib.suppress(OSError):
                saw_lock = office.paths.lock_file.read_text(encoding="ascii").strip() == str(proc.pid)
            time.sleep(0.02)
        out, err = proc.communicate(timeout=60)
    assert saw_lock and "working on" not in err
    assert proc.returncode != 0 and "did not answer" in out + err, out + err
    assert len(records(office)) == 2  # nothing was sent: both stay in quarantine


# --- damaged entries -------------------------------------------------------------------------

def test_missing_files_are_shown_and_handled(office: Office, stuck: list[bytes]) -> None:
    ids = records(office)
    (office.paths.quarantine_dir / f"{ids['first']}.eml").unlink()  # only the record is left
    (office.paths.quarantine_dir / f"{ids['second']}.json").unlink()  # only the message is left

    listing = pop3gui("quarantine", "list")
    assert listing.returncode == 0
    assert "(message file missing)" in listing.stdout and "(record missing or unreadable" in listing.stdout
    doc = json.loads(pop3gui("quarantine", "list", "--json").stdout)
    assert sorted(m["problem"] for m in doc["messages"]) == ["message file missing",
                                                            "record missing or unreadable"]

    show = pop3gui("quarantine", "show", ids["first"])
    assert show.returncode == 0 and "File: missing" in show.stdout and "Reason:" in show.stdout
    show = pop3gui("quarantine", "show", ids["second"])
    assert show.returncode == 0 and "Record: missing" in show.stdout and "Subject: second" in show.stdout

    export = pop3gui("quarantine", "export", ids["first"], "--to", str(office.home / "out"))
    assert export.returncode == 1 and "its message file is missing" in export.stderr
    export = pop3gui("quarantine", "export", ids["second"], "--to", str(office.home / "out"))
    assert export.returncode == 0
    assert (office.home / "out" / f"{ids['second']}.eml").read_bytes().endswith(stuck[1].split(b"\r\n\r\n")[1])

    resubmit = pop3gui("quarantine", "resubmit", "--all")
    assert resubmit.returncode == 1 and resubmit.stdout.count("Not resubmitted") == 2
    delete = pop3gui("quarantine", "delete", "--all", "--yes")
    assert delete.returncode == 0 and list(office.paths.quarantine_dir.iterdir()) == []
