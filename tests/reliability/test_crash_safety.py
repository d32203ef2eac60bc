"""Crash safety: SIGKILL ``pop3gui run --once`` anywhere, restart, and nothing is lost.

The runner is a real child process working against the real Dovecot (POP3S)
and Postfix fixtures, with its POP3 password in the real Secret Service.

* ``test_random_kills_lose_nothing`` kills it at random moments (a seeded RNG;
  ``POP3GUI_CRASH_SEED=N`` replays a run) until at least 50 kills have landed,
  restarting after each until a run exits 0.
* The deterministic tests kill it at the two moments that matter most: between
  DELE and QUIT, and between the SMTP server's 250 and the journal write.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from email.message import EmailMessage
from typing import Any, cast

import pytest

from pop3gui.core.config.model import AccountConfig, Config, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.journal import DELETING, FLAGGED, HANDLED, SUBMITTING, Journal
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Quarantine
from tests.conftest import Pop3User
from tests.servers.dovecot import DovecotServer
from tests.support.crash import (
    delivered_ids,
    files_under,
    journal_rows,
    message_key,
    reaped,
    run_cli,
    snapshot_integrity,
    start_cli,
)
from tests.support.killer_proxy import (
    ImapCommandTrigger,
    KillerProxy,
    Pop3QuitTrigger,
    RewritingProxy,
    SmtpDataAcceptedTrigger,
    without_capabilities,
)
from tests.support.office import Office, make_message

MAILBOX_SIZE = 100
MIN_KILLS = 50
RESUBMITTING_INTERRUPTED = 3009

pytestmark = pytest.mark.servers


def _fill(dovecot: DovecotServer, user: str, tag: str, n: int, folder: str = "INBOX") -> list[str]:
    """Put *n* distinct messages into *user*'s mailbox (an IMAP *folder* of it); return their Message-IDs."""
    ids = []
    for i in range(n):
        mid = f"<{tag}-{i:03d}-{uuid.uuid4().hex[:10]}@fabrikam.example>"
        body = f"Message {i} of {tag}.\r\n" + "All work and no play makes Jack a dull boy.\r\n" * 20
        message = make_message(to="x@isp.example", subject=f"{tag} {i}", message_id=mid, body=body)
        if folder == "INBOX":
            dovecot.deliver(user, message)
        else:
            dovecot.deliver(user, message, folder)
        ids.append(mid)
    return ids


def _new_user(dovecot: DovecotServer) -> Pop3User:
    name = f"crash-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    return Pop3User(name=name, password=password, maildir=dovecot.add_user(name, password))


def _paths(home: Path) -> Paths:
    return Paths(home / "config.toml", home / "state", home / "logs")


def _calibrate(office: Office, tmp_path: Path,
               setup: Callable[[Pop3User], tuple[AccountConfig, ...]] | None = None,
               fill: Callable[[Pop3User, str], list[str]] | None = None) -> float:
    """Seconds a full, uninterrupted ``run --once`` takes on a mailbox of MAILBOX_SIZE messages.

    *setup* makes the accounts for a fresh user (default: one POP3S account),
    *fill* puts a round of MAILBOX_SIZE messages in (default: into the inbox).
    """
    user = _new_user(office.isp)
    home = tmp_path / "calibration"
    accounts = setup(user) if setup else (office.account_for(user, "calibration"),)
    save_config(Config(smtp=office.config.smtp, delivery=office.config.delivery, policies=office.config.policies,
                       accounts=accounts), home / "config.toml")
    if fill:
        fill(user, "calibration")
    else:
        _fill(office.isp, user.name, "calibration", MAILBOX_SIZE)
    began = time.monotonic()
    proc = start_cli(home, "run", "--once", "-q", output=tmp_path / "calibration.out")
    with reaped(proc):
        code = proc.wait(timeout=120)
    duration = time.monotonic() - began
    assert code == 0, (tmp_path / "calibration.out").read_text(errors="replace")
    office.local.wait_for_delivered(MAILBOX_SIZE, timeout=60)
    assert office.local.wait_for_queue_empty(30)
    office.local.clear()
    for account in accounts:
        Credentials().delete_pop3_password(account.name)
    return duration


@dataclass
class KillRounds:
    """What :func:`_kill_rounds` did: its runs, the kills that landed, and what the kills left behind."""

    seed: int
    all_ids: list[str] = field(default_factory=list)
    kills: int = 0
    runs: int = 0
    rounds: int = 0
    clean_exits: int = 0
    other_exits: Counter[int] = field(default_factory=Counter)
    odd_outputs: list[str] = field(default_factory=list)
    submitting_after_kill: Counter[str] = field(default_factory=Counter)  # message keys a kill left SUBMITTING


def _kill_rounds(office: Office, rng: random.Random, seed: int, full_run: float, output: Path,
                 fill: Callable[[str], list[str]], after_kill: Callable[[], None] | None = None) -> KillRounds:
    """Rounds of fresh mail (*fill*), each worked by ``run --once`` runs killed at random, until MIN_KILLS.

    Each kill's delay is drawn from [0, *full_run*]; after a kill the journal
    and the event store are checked (on a copy), *after_kill* looks at what
    the kill left, and the runner is started again, until a run exits 0.
    """
    journal_db = office.paths.journal_db
    events_db = office.paths.events_db
    done = KillRounds(seed)
    while done.kills < MIN_KILLS:
        done.rounds += 1
        done.all_ids += fill(f"round{done.rounds}")
        for _attempt in range(400):
            delay = rng.uniform(0, full_run)
            done.runs += 1
            output.unlink(missing_ok=True)
            proc = start_cli(office.home, "run", "--once", "-q", output=output)
            with reaped(proc):
                try:
                    code = proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
                    code = None
            if code is None:
                done.kills += 1
                for db in (journal_db, events_db):
                    check, keys = snapshot_integrity(db)
                    assert check == "ok", f"kill {done.kills} (seed {seed}, delay {delay:.3f} s): {db.name}: {check}"
                    if db == journal_db:
                        done.submitting_after_kill.update(keys)
                if after_kill is not None:
                    after_kill()
                continue
            if code == 0:
                done.clean_exits += 1
                break
            done.other_exits[code] += 1
            done.odd_outputs.append(f"run {done.runs} exited {code}:\n" + output.read_text(errors="replace")[-3000:])
        else:
            pytest.fail(f"round {done.rounds} never finished clean (seed {seed}); output:\n"
                        + "\n".join(done.odd_outputs[-3:]))
    return done


def _crash_seed(record_property: Any) -> tuple[int, random.Random]:
    seed = int(os.environ.get("POP3GUI_CRASH_SEED") or secrets.randbits(32))
    print(f"\ncrash test seed: POP3GUI_CRASH_SEED={seed}")
    record_property("crash_seed", seed)
    return seed, random.Random(seed)


def _record(record_property: Any, done: KillRounds, summary: str, lost: int, duplicates: int,
            elapsed: float) -> None:
    print(summary)
    for name, value in (("kills", done.kills), ("runs", done.runs), ("messages", len(done.all_ids)),
                        ("lost", lost), ("duplicates", duplicates), ("seconds", round(elapsed))):
        record_property(f"crash_{name}", value)
    record_property("crash_summary", summary)


@pytest.mark.slow
def test_random_kills_lose_nothing(office: Office, pop3_user: Pop3User, tmp_path: Path,
                                   record_property: Any) -> None:
    seed, rng = _crash_seed(record_property)
    started = time.monotonic()

    full_run = _calibrate(office, tmp_path)
    print(f"calibration: an uninterrupted run of {MAILBOX_SIZE} messages takes {full_run:.2f} s")
    office.use(office.account_for(pop3_user, "alice"))
    journal_db = office.paths.journal_db
    done = _kill_rounds(office, rng, seed, full_run, tmp_path / "runs.out",
                        lambda tag: _fill(office.isp, pop3_user.name, tag, MAILBOX_SIZE))
    kills, submitting_after_kill, other_exits = done.kills, done.submitting_after_kill, done.other_exits

    # The last round ended with a clean run: the mailbox is empty, everything arrived.
    assert office.isp.messages(pop3_user.name) == []
    office.local.wait_for_delivered(len(done.all_ids), timeout=120)
    assert office.local.wait_for_queue_empty(60)
    copies = delivered_ids(office.local.delivered())
    expected = {message_key(m) for m in done.all_ids}
    lost = sorted(expected - set(copies))
    foreign = sorted(set(copies) - expected)
    extra = {key: n - 1 for key, n in copies.items() if n > 1}
    duplicates = sum(extra.values())
    elapsed = time.monotonic() - started

    summary = (f"crash test (seed {seed}): {done.rounds} round(s) of {MAILBOX_SIZE} messages, {done.runs} runs, "
               f"{kills} kills survived, {len(lost)} lost, {duplicates} duplicate(s), "
               f"{len(set(submitting_after_kill))} message(s) left 'submitting' by a kill, "
               f"exits other than 0: {dict(other_exits) or 'none'}, {elapsed:.0f} s")
    _record(record_property, done, summary, len(lost), duplicates, elapsed)

    assert kills >= MIN_KILLS
    assert not lost, f"{len(lost)} message(s) lost (seed {seed}): {lost[:5]}"
    assert not foreign, f"unexpected messages delivered: {foreign[:5]}"
    # Every extra copy is explained by a kill that left that very message between
    # acceptance and the journal write (its row still 'submitting'); a kill can
    # catch at most one message per SMTP session in flight.
    assert duplicates <= kills * _smtp_sessions(office.config)
    for key, n in extra.items():
        assert submitting_after_kill[key] >= n, f"duplicate of {key} not explained by a kill (seed {seed})"
    assert not other_exits, f"runs ended with unexpected exit codes (seed {seed}): {dict(other_exits)}\n" + \
        "\n".join(done.odd_outputs[:3])
    # No leftovers, no quarantine.
    assert files_under(office.paths.spool_dir) == []
    assert list(Quarantine(office.paths.quarantine_dir).records()) == []
    # The journal agrees with the server: all handled; the next run forgets the deleted UIDs.
    journal = Journal(journal_db)
    try:
        records = journal.records("alice")
    finally:
        journal.close()
    # (rows of deleted messages may already be gone; none may still be open)
    assert all(r.state == HANDLED for r in records.values()), Counter(r.state for r in records.values())
    again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    journal = Journal(journal_db)
    try:
        assert journal.records("alice") == {}
    finally:
        journal.close()
    assert sum(delivered_ids(office.local.delivered()).values()) == sum(copies.values())


INBOUND = "Inbound"  # the IMAP folder the moving account reads
MOVE_TO = "Delivered"  # where it moves what it handled


def _imap_accounts(office: Office, user: Pop3User, prefix: str = "") -> tuple[AccountConfig, AccountConfig]:
    """Two IMAPS accounts on *user*'s mailbox: one deletes what it handled (INBOX), one moves it (Inbound)."""
    deleting = office.imap_account_for(user, f"{prefix}imap-delete", folders=("INBOX",), after_delivery="delete")
    moving = office.imap_account_for(user, f"{prefix}imap-move", folders=(INBOUND,), after_delivery="move",
                                     move_to=MOVE_TO)
    return deleting, moving


def _imap_fill(dovecot: DovecotServer, user: str, tag: str) -> tuple[list[str], list[str]]:
    """A round of MAILBOX_SIZE messages: half into INBOX, half into Inbound; their Message-IDs by folder."""
    half = MAILBOX_SIZE // 2
    return (_fill(dovecot, user, f"{tag}-inbox", half),
            _fill(dovecot, user, f"{tag}-inbound", MAILBOX_SIZE - half, INBOUND))


@pytest.mark.slow
def test_random_kills_lose_nothing_on_imap(office: Office, pop3_user: Pop3User, dovecot_imap: DovecotServer,
                                           tmp_path: Path, record_property: Any) -> None:
    """The random kills against IMAP accounts (IMAPS, password in the Secret Service): "delete" and "move".

    Both accounts read the same Dovecot mailbox and run side by side in every
    ``run --once``, so each kill lands in both sessions at once.
    """
    seed, rng = _crash_seed(record_property)
    started = time.monotonic()

    def calibration_accounts(user: Pop3User) -> tuple[AccountConfig, ...]:
        dovecot_imap.create_folder(user.name, INBOUND)
        return _imap_accounts(office, user, "calibration-")

    def calibration_fill(user: Pop3User, tag: str) -> list[str]:
        inbox, inbound = _imap_fill(dovecot_imap, user.name, tag)
        return inbox + inbound

    full_run = _calibrate(office, tmp_path, calibration_accounts, calibration_fill)
    print(f"calibration: an uninterrupted run of {MAILBOX_SIZE} messages (two IMAP accounts) takes {full_run:.2f} s")
    dovecot_imap.create_folder(pop3_user.name, INBOUND)
    deleting, moving = _imap_accounts(office, pop3_user)
    office.use(deleting, moving)
    moved_ids: list[str] = []

    def fill(tag: str) -> list[str]:
        inbox, inbound = _imap_fill(dovecot_imap, pop3_user.name, tag)
        moved_ids.extend(inbound)
        return inbox + inbound

    # What each kill left of a removal: outcomes on disk, the removal not finished
    # (journal rows 'deleting' or 'flagged'), and messages the server holds marked \Deleted.
    halfway: Counter[str] = Counter()

    def after_kill() -> None:
        if not office.paths.journal_db.exists():  # killed before the journal was made
            return
        states = {state for account in (deleting, moving)
                  for state, _ in journal_rows(office.paths.journal_db, account.name).values()}
        halfway.update(state for state in (DELETING, FLAGGED) if state in states)
        if any(_marked_deleted(dovecot_imap, pop3_user.name, folder) for folder in ("INBOX", INBOUND)):
            halfway["marked"] += 1

    done = _kill_rounds(office, rng, seed, full_run, tmp_path / "runs.out", fill, after_kill)
    kills, submitting_after_kill, other_exits = done.kills, done.submitting_after_kill, done.other_exits

    # The last round ended with a clean run: both source folders are empty (nothing left
    # flagged \Deleted either: those are files in the Maildir too), everything arrived.
    assert dovecot_imap.messages(pop3_user.name) == []
    assert dovecot_imap.messages(pop3_user.name, INBOUND) == []
    office.local.wait_for_delivered(len(done.all_ids), timeout=120)
    assert office.local.wait_for_queue_empty(60)
    copies = delivered_ids(office.local.delivered())
    expected = {message_key(m) for m in done.all_ids}
    lost = sorted(expected - set(copies))
    foreign = sorted(set(copies) - expected)
    extra = {key: n - 1 for key, n in copies.items() if n > 1}
    duplicates = sum(extra.values())
    # The moved copies: every message of Inbound is in Delivered once, and nothing else is.
    kept = delivered_ids(_parsed(dovecot_imap.messages(pop3_user.name, MOVE_TO)))
    moved_lost = sorted({message_key(m) for m in moved_ids} - set(kept))
    moved_twice = {key: n - 1 for key, n in kept.items() if n > 1}
    moved_foreign = sorted(set(kept) - {message_key(m) for m in moved_ids})
    elapsed = time.monotonic() - started

    summary = (f"IMAP crash test (seed {seed}): {done.rounds} round(s) of {MAILBOX_SIZE} messages "
               f"(delete + move), {done.runs} runs, {kills} kills survived, {len(lost)} lost, "
               f"{duplicates} duplicate(s), {len(set(submitting_after_kill))} message(s) left 'submitting' by a "
               f"kill, {halfway[DELETING]} kill(s) left rows 'deleting', {halfway[FLAGGED]} 'flagged', "
               f"{halfway['marked']} left messages marked \\Deleted on the server, moved copies: "
               f"{sum(kept.values())} of {len(moved_ids)}, {sum(moved_twice.values())} twice, "
               f"exits other than 0: {dict(other_exits) or 'none'}, {elapsed:.0f} s")
    _record(record_property, done, summary, len(lost), duplicates, elapsed)

    assert kills >= MIN_KILLS
    assert not lost, f"{len(lost)} message(s) lost (seed {seed}): {lost[:5]}"
    assert not foreign, f"unexpected messages delivered: {foreign[:5]}"
    # The POP3 test's acceptance: each extra copy is a message a kill left 'submitting';
    # a kill can catch one message per SMTP session in flight, in each account's session.
    assert duplicates <= kills * _smtp_sessions(office.config) * 2
    for key, n in extra.items():
        assert submitting_after_kill[key] >= n, f"duplicate of {key} not explained by a kill (seed {seed})"
    assert not moved_lost, f"{len(moved_lost)} moved message(s) missing from {MOVE_TO} (seed {seed}): {moved_lost[:5]}"
    assert not moved_twice, f"moved twice (seed {seed}): {sorted(moved_twice)[:5]}"
    assert not moved_foreign, f"in {MOVE_TO} but never in {INBOUND} (seed {seed}): {moved_foreign[:5]}"
    assert not other_exits, f"runs ended with unexpected exit codes (seed {seed}): {dict(other_exits)}\n" + \
        "\n".join(done.odd_outputs[:3])
    assert files_under(office.paths.spool_dir) == []
    assert list(Quarantine(office.paths.quarantine_dir).records()) == []
    # The journal agrees with the server: nothing open; the next run forgets every removed message.
    journal = Journal(office.paths.journal_db)
    try:
        records = {**journal.records(deleting.name), **journal.records(moving.name)}
    finally:
        journal.close()
    assert all(r.state == HANDLED for r in records.values()), Counter(r.state for r in records.values())
    again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    journal = Journal(office.paths.journal_db)
    try:
        assert journal.records(deleting.name) == {} and journal.records(moving.name) == {}
    finally:
        journal.close()
    assert sum(delivered_ids(office.local.delivered()).values()) == sum(copies.values())
    assert len(dovecot_imap.messages(pop3_user.name, MOVE_TO)) == sum(kept.values())


def _marked_deleted(dovecot: DovecotServer, user: str, folder: str = "INBOX") -> int:
    """How many messages of a folder carry \\Deleted (Maildir flag T), expunged or not yet."""
    path = dovecot.folder_path(user, folder)
    return sum(1 for entry in (path / "cur").glob("*") if "T" in entry.name.rpartition(":2,")[2])


def _parsed(messages: list[bytes]) -> list[EmailMessage]:
    return [cast(EmailMessage, email.message_from_bytes(m, policy=email.policy.default)) for m in messages]


def _smtp_sessions(config: Config) -> int:
    """SMTP sessions the connector may run at once per mailbox (1 before [performance] existed)."""
    performance = getattr(config, "performance", None)
    return max(1, int(getattr(performance, "smtp_connections", 1)))


# --- deterministic kills --------------------------------------------------------


def _plain_account(office: Office, user: Pop3User, port: int, **kw: object) -> AccountConfig:
    return office.account_for(user, "alice", port=port, security="none", ca_file="", **kw)


def test_kill_between_dele_and_quit_delivers_each_message_once(office: Office, pop3_user: Pop3User,
                                                               tmp_path: Path) -> None:
    ids = _fill(office.isp, pop3_user.name, "quit", 3)
    output = tmp_path / "runs.out"
    with KillerProxy("127.0.0.1", office.isp.pop3_port, Pop3QuitTrigger()) as proxy:
        office.use(_plain_account(office, pop3_user, proxy.port))
        proc = start_cli(office.home, "run", "--once", output=output)
        proxy.pid = proc.pid
        with reaped(proc):
            code = proc.wait(timeout=60)
        assert proxy.trigger.fired.is_set(), output.read_text(errors="replace")
        assert code == -9, output.read_text(errors="replace")
        sent = bytes(proxy.client_bytes)
        assert sent.count(b"DELE ") == 3 and b"QUIT" in sent
        # QUIT never reached Dovecot: the deletions were rolled back.
        assert len(office.isp.messages(pop3_user.name)) == 3
        check, keys = snapshot_integrity(office.paths.journal_db)
        assert check == "ok" and keys == []

        again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert office.isp.messages(pop3_user.name) == []
    office.local.wait_for_delivered(3)
    assert office.local.wait_for_queue_empty()
    assert delivered_ids(office.local.delivered()) == Counter({message_key(m): 1 for m in ids})
    assert "Delivered to" not in again.stdout  # the restart only deleted


def test_kill_between_smtp_acceptance_and_journal_write_resubmits(office: Office, pop3_user: Pop3User,
                                                                  tmp_path: Path) -> None:
    ids = _fill(office.isp, pop3_user.name, "data", 3)
    output = tmp_path / "runs.out"
    postfix = office.local
    trigger = SmtpDataAcceptedTrigger()
    with KillerProxy(postfix.host, postfix.port, trigger) as proxy:
        office.use(office.account_for(pop3_user, "alice"),
                   smtp=SmtpConfig(host="127.0.0.1", port=proxy.port, timeout_s=20))
        proc = start_cli(office.home, "run", "--once", output=output)
        proxy.pid = proc.pid
        with reaped(proc):
            code = proc.wait(timeout=60)
        assert trigger.fired.is_set(), output.read_text(errors="replace")
        assert code == -9
        accepted = next(message_key(m) for m in ids if m.encode() in trigger.message)
        # Postfix has that message; the journal still says 'submitting' for it
        # (and for any message another SMTP session had in flight).
        postfix.wait_for_delivered(1)
        check, keys = snapshot_integrity(office.paths.journal_db)
        assert check == "ok" and accepted in keys, journal_rows(office.paths.journal_db, "alice")
        interrupted = {uid for uid, (state, _) in journal_rows(office.paths.journal_db, "alice").items()
                       if state == SUBMITTING}
        assert len(office.isp.messages(pop3_user.name)) == 3

        again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert office.isp.messages(pop3_user.name) == []
    postfix.wait_for_delivered(4)
    assert postfix.wait_for_queue_empty()
    # The accepted cost: the interrupted message arrives twice; nothing is lost,
    # and only a message the kill left 'submitting' may arrive twice.
    copies = delivered_ids(postfix.delivered())
    assert set(copies) == {message_key(m) for m in ids}
    assert copies[accepted] == 2
    assert all(n == 1 or key in keys for key, n in copies.items())
    events = run_cli(office.home, "events", "--json", "--limit", "500")
    resubmitted = [e for e in map(json.loads, events.stdout.splitlines()) if e["id"] == RESUBMITTING_INTERRUPTED]
    assert {e["uid"] for e in resubmitted} == interrupted
    assert all(e["account"] == "alice" and e["cause"] and e["fix"] for e in resubmitted)
    assert " 3009 " in again.stdout  # the admin running it by hand sees it too


def test_resubmission_event_names_the_message_that_may_arrive_twice(office: Office, pop3_user: Pop3User,
                                                                     tmp_path: Path) -> None:
    [mid] = _fill(office.isp, pop3_user.name, "named", 1)
    postfix = office.local
    with KillerProxy(postfix.host, postfix.port, SmtpDataAcceptedTrigger()) as proxy:
        office.use(office.account_for(pop3_user, "alice"),
                   smtp=SmtpConfig(host="127.0.0.1", port=proxy.port, timeout_s=20))
        proc = start_cli(office.home, "run", "--once", output=tmp_path / "runs.out")
        proxy.pid = proc.pid
        with reaped(proc):
            assert proc.wait(timeout=60) == -9
        assert run_cli(office.home, "run", "--once").returncode == 0
    events = run_cli(office.home, "events", "--json", "--limit", "500")
    [resubmitted] = [e for e in map(json.loads, events.stdout.splitlines()) if e["id"] == RESUBMITTING_INTERRUPTED]
    assert resubmitted["message_id"] == mid


# --- deterministic kills of an IMAP account ---------------------------------------


def _plain_imap_account(office: Office, user: Pop3User, port: int, after_delivery: str) -> AccountConfig:
    """An IMAP account through a proxy, in plaintext so that the proxy sees the commands."""
    return office.imap_account_for(user, "alice", port=port, security="none", ca_file="",
                                   after_delivery=after_delivery, move_to=MOVE_TO if after_delivery == "move" else "")


def _imap_message_ids(dovecot: DovecotServer, user: str, folder: str) -> Counter[str]:
    return delivered_ids(_parsed(dovecot.messages(user, folder)))


# (after_delivery, the command, "sent": killed before the server sees it /
#  "done": killed once the server did it, before the connector hears so; the journal
#  state the kill leaves; what the server then holds: "marked" (\Deleted, not expunged),
#  "kept" (untouched), "gone" (expunged or moved))
IMAP_REMOVAL_KILLS = [
    ("delete", b"UID STORE", "sent", FLAGGED, "kept"),
    ("delete", b"UID STORE", "done", FLAGGED, "marked"),
    ("delete", b"UID EXPUNGE", "sent", FLAGGED, "marked"),
    ("delete", b"UID EXPUNGE", "done", FLAGGED, "gone"),
    ("move", b"UID MOVE", "sent", DELETING, "kept"),
    ("move", b"UID MOVE", "done", DELETING, "gone"),
]


@pytest.mark.parametrize(("after_delivery", "command", "when", "journal_state", "server_holds"), IMAP_REMOVAL_KILLS,
                         ids=[f"{a}-{c.decode().replace(' ', '_')}-{w}" for a, c, w, _, _ in IMAP_REMOVAL_KILLS])
def test_imap_kill_between_the_durable_outcome_and_the_removal_delivers_each_message_once(
        office: Office, pop3_user: Pop3User, dovecot_imap: DovecotServer, tmp_path: Path, after_delivery: str,
        command: bytes, when: str, journal_state: str, server_holds: str) -> None:
    """Kill an IMAP account's runner at its removal: the outcomes are on disk, the removal is not done.

    A proxy in front of Dovecot's IMAP port kills the runner either before
    the command reaches Dovecot or once Dovecot carried it out, before the
    runner reads the reply (the \\Deleted STORE, UID EXPUNGE, UID MOVE). The
    restart finishes the removal and delivers nothing again.
    """
    ids = _fill(dovecot_imap, pop3_user.name, "removal", 3)
    if after_delivery == "move":
        dovecot_imap.create_folder(pop3_user.name, MOVE_TO)  # the first MOVE succeeds (no TRYCREATE first)
    output = tmp_path / "runs.out"
    trigger = ImapCommandTrigger(command, when=when, contains=b"\\Deleted" if command == b"UID STORE" else b"")
    with KillerProxy("127.0.0.1", dovecot_imap.imap_port, trigger) as proxy:
        office.use(_plain_imap_account(office, pop3_user, proxy.port, after_delivery))
        proc = start_cli(office.home, "run", "--once", output=output)
        proxy.pid = proc.pid
        with reaped(proc):
            code = proc.wait(timeout=60)
        assert trigger.fired.is_set(), output.read_text(errors="replace")
        assert code == -9, output.read_text(errors="replace")
        assert when == "sent" or trigger.reply.split(b" ")[1:2] == [b"OK"], trigger.reply
        # Every message reached Postfix before the removal began; the outcomes are on disk.
        office.local.wait_for_delivered(3)
        check, keys = snapshot_integrity(office.paths.journal_db)
        assert check == "ok" and keys == []
        states = journal_rows(office.paths.journal_db, "alice")
        assert [state for state, _ in states.values()] == [journal_state] * 3, states
        left = dovecot_imap.messages(pop3_user.name)
        if server_holds == "gone":
            assert left == []
        else:
            assert len(left) == 3
            assert _marked_deleted(dovecot_imap, pop3_user.name) == (3 if server_holds == "marked" else 0)
        if after_delivery == "move":
            assert len(dovecot_imap.messages(pop3_user.name, MOVE_TO)) == (3 if server_holds == "gone" else 0)

        again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert dovecot_imap.messages(pop3_user.name) == []
    office.local.wait_for_delivered(3)
    assert office.local.wait_for_queue_empty()
    assert delivered_ids(office.local.delivered()) == Counter({message_key(m): 1 for m in ids})
    assert "Delivered to" not in again.stdout  # the restart only removed
    if after_delivery == "move":
        assert _imap_message_ids(dovecot_imap, pop3_user.name, MOVE_TO) == Counter({message_key(m): 1 for m in ids})
    journal = Journal(office.paths.journal_db)
    try:
        assert journal.records("alice") == {}
    finally:
        journal.close()


# (the command, "sent"/"done" as above, the journal state the kill leaves, what the
#  server then holds in the source folder, how many copies it then holds in move_to,
#  and how many copies of each message move_to holds in the end)
IMAP_COPY_KILLS = [
    (b"UID COPY", "sent", DELETING, "kept", 0, 1),
    # The one window left open: Dovecot made the copies, but the runner died before it
    # recorded so (here before it read the OK; a kill between the OK and the 'flagged'
    # row just after it is the same), so its journal still says 'deleting' and the
    # restart copies again. The cost is a second copy in the archive folder, never a
    # message lost or delivered twice: the source folder is only touched once a copy
    # is known to exist. (No journal write can close it: only the server knows the
    # copy was made until its answer arrives.)
    (b"UID COPY", "done", DELETING, "kept", 3, 2),
    # From the COPY's OK on, the journal says 'flagged' (on disk before \Deleted goes
    # out): the restart only flags and expunges, it never copies again.
    (b"UID STORE", "sent", FLAGGED, "kept", 3, 1),
    (b"UID STORE", "done", FLAGGED, "marked", 3, 1),
    (b"UID EXPUNGE", "sent", FLAGGED, "marked", 3, 1),
]


@pytest.mark.parametrize(("command", "when", "journal_state", "server_holds", "copied", "copies_in_the_end"),
                         IMAP_COPY_KILLS,
                         ids=[f"{c.decode().replace(' ', '_')}-{w}" for c, w, *_ in IMAP_COPY_KILLS])
def test_imap_kill_while_moving_by_copy_delivers_once_and_copies_at_most_twice(
        office: Office, pop3_user: Pop3User, dovecot_imap: DovecotServer, tmp_path: Path, command: bytes,
        when: str, journal_state: str, server_holds: str, copied: int, copies_in_the_end: int) -> None:
    """A server without MOVE: after_delivery = "move" is UID COPY, \\Deleted, UID EXPUNGE; kills at each step.

    The proxy hides MOVE from the capabilities (Dovecot has it), so the runner
    copies. Whatever the step, the restart delivers nothing again and empties
    the source folder; move_to ends with one copy of each message, except
    after a kill between Dovecot's COPY and the runner reading its OK, which
    leaves two (the connector cannot know the first copy was made).
    """
    ids = _fill(dovecot_imap, pop3_user.name, "copy", 3)
    dovecot_imap.create_folder(pop3_user.name, MOVE_TO)
    output = tmp_path / "runs.out"
    trigger = ImapCommandTrigger(command, when=when, contains=b"\\Deleted" if command == b"UID STORE" else b"")
    with RewritingProxy("127.0.0.1", dovecot_imap.imap_port, without_capabilities(b"MOVE"), trigger) as proxy:
        office.use(_plain_imap_account(office, pop3_user, proxy.port, "move"))
        proc = start_cli(office.home, "run", "--once", output=output)
        proxy.pid = proc.pid
        with reaped(proc):
            code = proc.wait(timeout=60)
        assert trigger.fired.is_set(), output.read_text(errors="replace")
        assert code == -9, output.read_text(errors="replace")
        assert when == "sent" or trigger.reply.split(b" ")[1:2] == [b"OK"], trigger.reply
        assert b"UID MOVE" not in bytes(proxy.client_bytes)
        office.local.wait_for_delivered(3)
        check, keys = snapshot_integrity(office.paths.journal_db)
        assert check == "ok" and keys == []
        states = journal_rows(office.paths.journal_db, "alice")
        assert [state for state, _ in states.values()] == [journal_state] * 3, states
        assert len(dovecot_imap.messages(pop3_user.name)) == 3
        assert _marked_deleted(dovecot_imap, pop3_user.name) == (3 if server_holds == "marked" else 0)
        assert len(dovecot_imap.messages(pop3_user.name, MOVE_TO)) == copied

        again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    # Delivered exactly once, nothing lost, the source folder empty: whatever the step.
    assert dovecot_imap.messages(pop3_user.name) == []
    office.local.wait_for_delivered(3)
    assert office.local.wait_for_queue_empty()
    assert delivered_ids(office.local.delivered()) == Counter({message_key(m): 1 for m in ids})
    assert "Delivered to" not in again.stdout
    # Every message is in move_to; at most twice, and twice only after the COPY's OK went unread.
    assert _imap_message_ids(dovecot_imap, pop3_user.name, MOVE_TO) == Counter(
        {message_key(m): copies_in_the_end for m in ids})
    # The restart sends UID COPY again only when the kill came before the first COPY's OK was read
    # (the proxy records a command it then held back, so a COPY killed at "sent" counts too).
    copies_sent = bytes(proxy.client_bytes).upper().count(b" UID COPY ")
    assert copies_sent == (2 if command == b"UID COPY" else 1), copies_sent
    journal = Journal(office.paths.journal_db)
    try:
        assert journal.records("alice") == {}
    finally:
        journal.close()


@pytest.mark.parametrize("after_delivery", ["delete", "move"])
def test_imap_kill_between_smtp_acceptance_and_journal_write_resubmits(
        office: Office, pop3_user: Pop3User, dovecot_imap: DovecotServer, tmp_path: Path,
        after_delivery: str) -> None:
    """The POP3 test's window for an IMAP account (IMAPS): Postfix took the message, the journal never heard."""
    ids = _fill(dovecot_imap, pop3_user.name, "data", 3)
    output = tmp_path / "runs.out"
    postfix = office.local
    trigger = SmtpDataAcceptedTrigger()
    with KillerProxy(postfix.host, postfix.port, trigger) as proxy:
        office.use(office.imap_account_for(pop3_user, "alice", after_delivery=after_delivery,
                                           move_to=MOVE_TO if after_delivery == "move" else ""),
                   smtp=SmtpConfig(host="127.0.0.1", port=proxy.port, timeout_s=20))
        proc = start_cli(office.home, "run", "--once", output=output)
        proxy.pid = proc.pid
        with reaped(proc):
            code = proc.wait(timeout=60)
        assert trigger.fired.is_set(), output.read_text(errors="replace")
        assert code == -9
        accepted_id = next(m for m in ids if m.encode() in trigger.message)
        accepted = message_key(accepted_id)
        postfix.wait_for_delivered(1)
        check, keys = snapshot_integrity(office.paths.journal_db)
        assert check == "ok" and accepted in keys, journal_rows(office.paths.journal_db, "alice")
        interrupted = {uid for uid, (state, _) in journal_rows(office.paths.journal_db, "alice").items()
                       if state == SUBMITTING}
        assert all(uid.startswith("imap:") for uid in interrupted)
        # Nothing was removed: the messages are all in INBOX, none marked \Deleted.
        assert len(dovecot_imap.messages(pop3_user.name)) == 3
        assert _marked_deleted(dovecot_imap, pop3_user.name) == 0

        again = run_cli(office.home, "run", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert dovecot_imap.messages(pop3_user.name) == []
    postfix.wait_for_delivered(4)
    assert postfix.wait_for_queue_empty()
    copies = delivered_ids(postfix.delivered())
    assert set(copies) == {message_key(m) for m in ids}
    assert copies[accepted] == 2  # the accepted cost, as for POP3
    assert all(n == 1 or key in keys for key, n in copies.items())
    if after_delivery == "move":  # moved once each, the resubmitted one too
        assert _imap_message_ids(dovecot_imap, pop3_user.name, MOVE_TO) == Counter({message_key(m): 1 for m in ids})
    events = run_cli(office.home, "events", "--json", "--limit", "500")
    resubmitted = [e for e in map(json.loads, events.stdout.splitlines()) if e["id"] == RESUBMITTING_INTERRUPTED]
    assert {e["uid"] for e in resubmitted} == interrupted
    assert all(e["account"] == "alice" and e["cause"] and e["fix"] for e in resubmitted)
    assert accepted_id in {e["message_id"] for e in resubmitted}  # it names the message that may arrive twice
    assert " 3009 " in again.stdout


def test_a_killed_journal_is_never_corrupt(tmp_path: Path) -> None:
    """Hammer the journal from a child and SIGKILL it mid-transaction, many times."""
    db = tmp_path / "journal.sqlite3"
    code = (
        "import sys\n"
        "from pop3gui.core.state.journal import Journal\n"
        "j = Journal(__import__('pathlib').Path(sys.argv[1]))\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    j.begin('a', f'u{i}', f'<m{i}>', 100)\n"
        "    j.finish('a', f'u{i}', f'<m{i}>', 100, 'delivered', ['alice@contoso.com'])\n"
        "    if i % 50 == 0:\n"
        "        j.forget_absent('a', [f'u{i}'])\n"
    )
    rng = random.Random(int(os.environ.get("POP3GUI_CRASH_SEED") or 5))
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with reaped(proc):
            time.sleep(0.3 + rng.uniform(0, 0.3))
        check, _ = snapshot_integrity(db)
        assert check == "ok"
        journal = Journal(db)
        try:
            bad = [r for r in journal.records("a").values() if r.state not in (HANDLED, "submitting")]
        finally:
            journal.close()
        assert bad == []
