"""``pop3gui events`` with filters: --account, --severity, --since, --grep, --csv, with --limit/--json/--follow."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId, Reply, Severity
from pop3gui.core.events.store import EventStore
from pop3gui.core.failures import Failure
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

NOW = datetime.now(timezone.utc)


def pop3gui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POP3GUI_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    store = EventStore(home / "state" / "events.sqlite3")
    for event in (
        Event(EventId.CYCLE_STARTED, Severity.INFO, "Retrieving mail from 2 account(s).", time=NOW - timedelta(days=3)),
        Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "Delivered to alice@contoso.com.", account="alice",
              time=NOW - timedelta(days=2)),
        Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, 'Refused "ghost", said the server.', account="bob",
              cause="The local server has no mailbox ghost@contoso.com.", fix="Create the mailbox, then resubmit.",
              reply=Reply(550, "5.1.1", "User unknown"), diagnosis=Failure.UNKNOWN_USER,
              time=NOW - timedelta(hours=3)),
        Event(EventId.MESSAGE_DOWNLOADED, Severity.DEBUG, "Downloaded 512 bytes.", account="alice",
              time=NOW - timedelta(hours=2)),
        Event(EventId.POLICY_WARNING, Severity.WARNING, "No policy for fabrikam.com.", account="alice",
              cause="Grüße: the domain is not accepted,\nsecond line", fix="Add fabrikam.com to a policy.",
              time=NOW - timedelta(minutes=30)),
        Event(EventId.POP3_LOGIN_FAILED, Severity.ERROR, "Login failed.", account="alice",
              fix="Check the PASSWORD with pop3gui secret set.", time=NOW - timedelta(minutes=10)),
    ):
        store.append(event)
    store.close()
    return home


def texts(out: subprocess.CompletedProcess[str]) -> list[str]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["text"] for line in out.stdout.splitlines()]


def test_account(home: Path) -> None:
    assert texts(pop3gui(home, "events", "--json", "--account", "alice")) == [
        "Delivered to alice@contoso.com.", "Downloaded 512 bytes.", "No policy for fabrikam.com.", "Login failed."]


def test_severity_is_that_level_and_above(home: Path) -> None:
    assert texts(pop3gui(home, "events", "--json", "--severity", "warning")) == [
        'Refused "ghost", said the server.', "No policy for fabrikam.com.", "Login failed."]
    assert texts(pop3gui(home, "events", "--json", "--severity", "ERROR")) == [
        'Refused "ghost", said the server.', "Login failed."]
    assert len(texts(pop3gui(home, "events", "--json", "--severity", "debug"))) == 6


def test_since_relative_and_iso(home: Path) -> None:
    assert texts(pop3gui(home, "events", "--json", "--since", "1h")) == [
        "No policy for fabrikam.com.", "Login failed."]
    assert len(texts(pop3gui(home, "events", "--json", "--since", "90m"))) == 2
    assert len(texts(pop3gui(home, "events", "--json", "--since", "4d"))) == 6
    day = (NOW - timedelta(days=1)).astimezone().strftime("%Y-%m-%d")  # a local date: from its midnight
    assert len(texts(pop3gui(home, "events", "--json", "--since", day))) == 4
    moment = (NOW - timedelta(minutes=20)).isoformat()
    assert texts(pop3gui(home, "events", "--json", "--since", moment)) == ["Login failed."]


def test_grep_reads_text_cause_and_fix(home: Path) -> None:
    assert texts(pop3gui(home, "events", "--json", "--grep", "password")) == ["Login failed."]
    assert texts(pop3gui(home, "events", "--json", "--grep", "GRÜSSE")) == ["No policy for fabrikam.com."]
    assert texts(pop3gui(home, "events", "--json", "--grep", "no mailbox ghost")) == [
        'Refused "ghost", said the server.']


def test_filters_combine_with_limit(home: Path) -> None:
    assert texts(pop3gui(home, "events", "--json", "--account", "alice", "--severity", "info", "--since", "3d",
                         "--limit", "2")) == ["No policy for fabrikam.com.", "Login failed."]
    assert texts(pop3gui(home, "events", "--json", "--account", "alice", "--grep", "policy", "--severity",
                         "error")) == []
    assert len(texts(pop3gui(home, "events", "--json", "--limit", "0"))) == 6


def test_text_output_is_the_full_event(home: Path) -> None:
    out = pop3gui(home, "events", "--account", "bob")
    assert out.returncode == 0
    assert "ERROR   4001 [bob]" in out.stdout and "Reply: 550 5.1.1 User unknown" in out.stdout
    assert "Fix: Create the mailbox" in out.stdout and "alice" not in out.stdout


def test_csv_has_a_header_and_quotes_what_needs_it(home: Path) -> None:
    out = pop3gui(home, "events", "--csv", "--severity", "warning")
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["time", "severity", "id", "account", "text", "cause", "fix", "diagnosis"]
    assert [r[4] for r in rows[1:]] == ['Refused "ghost", said the server.', "No policy for fabrikam.com.",
                                        "Login failed."]
    refused, warning = rows[1], rows[2]
    assert refused[1:4] == ["error", "4001", "bob"] and refused[7] == "unknown_user"
    assert datetime.fromisoformat(refused[0]) == (NOW - timedelta(hours=3)).replace(microsecond=NOW.microsecond)
    assert warning[5] == "Grüße: the domain is not accepted,\nsecond line" and warning[7] == ""


def test_csv_and_json_are_one_or_the_other(home: Path) -> None:
    out = pop3gui(home, "events", "--csv", "--json")
    assert out.returncode == 2 and "not allowed with" in out.stderr


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--since", "yesterdayish", "cannot read 'yesterdayish' as a time"),
    ("--since", "2x", "cannot read '2x'"),
    ("--severity", "loud", "unknown severity 'loud'"),
    ("--limit", "-3", "-3 is not a number of events"),
])
def test_bad_values_are_explained_and_exit_2(home: Path, option: str, value: str, words: str) -> None:
    out = pop3gui(home, "events", option, value)
    assert out.returncode == 2
    assert f"pop3gui: error: {option}: {words}" in out.stderr
    assert "Fix:" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_follow_applies_the_filters(home: Path) -> None:
    env = dict(os.environ, POP3GUI_HOME=str(home))
    follower = subprocess.Popen([sys.executable, "-m", "pop3gui", "events", "--follow", "--json", "--account",
                                 "alice", "--severity", "error", "--limit", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["text"] == "Login failed."  # the newest that matches
        store = EventStore(home / "state" / "events.sqlite3")
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "alice info", account="alice"))
        store.append(Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "bob error", account="bob"))
        store.append(Event(EventId.POP3_TIMEOUT, Severity.ERROR, "alice error", account="alice"))
        store.close()
        deadline = time.monotonic() + 20
        line = follower.stdout.readline()
        assert time.monotonic() < deadline
        assert json.loads(line)["text"] == "alice error"
    finally:
        follower.terminate()
        rest, _ = follower.communicate(timeout=20)
    assert rest == ""  # nothing else passed the filters


@pytest.mark.servers
def test_filters_on_a_real_cycle(office: Office, pop3_user: Pop3User) -> None:
    """A recipient Postfix refuses: the errors of that account, as CSV, say why."""
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="to ghost"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="ghost@contoso.com"))
    run = subprocess.run([sys.executable, "-m", "pop3gui", "run", "--once", "-q"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    out = pop3gui(office.home, "events", "--csv", "--account", "alice", "--severity", "error", "--since", "10m")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and all(r["severity"] == "error" and r["account"] == "alice" for r in rows)
    refused = [r for r in rows if r["id"] == "4001"]
    assert refused and refused[0]["diagnosis"] == "unknown_user" and "ghost@contoso.com" in refused[0]["cause"]
    assert pop3gui(office.home, "events", "--csv", "--account", "nobody").stdout.splitlines() == [
        "time,severity,id,account,text,cause,fix,diagnosis"]
