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

import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.config.model import AccountConfig, Config, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.journal import HANDLED, SUBMITTING, Journal
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
from tests.support.killer_proxy import KillerProxy, Pop3QuitTrigger, SmtpDataAcceptedTrigger
from tests.support.office import Office, make_message

MAILBOX_SIZE = 100
MIN_KILLS = 50
RESUBMITTING_INTERRUPTED = 3009

pytestmark = pytest.mark.servers


def _fill(dovecot: DovecotServer, user: str, tag: str, n: int) -> list[str]:
    """Put *n* distinct messages into *user*'s mailbox; return their Message-IDs."""
    ids = []
    for i in range(n):
        mid = f"<{tag}-{i:03d}-{uuid.uuid4().hex[:10]}@fabrikam.example>"
        body = f"Message {i} of {tag}.\r\n" + "All work and no play makes Jack a dull boy.\r\n" * 20
        dovecot.deliver(user, make_message(to="x@isp.example", subject=f"{tag} {i}", message_id=mid, body=body))
        ids.append(mid)
    return ids


def _new_user(dovecot: DovecotServer) -> Pop3User:
    name = f"crash-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    return Pop3User(name=name, password=password, maildir=dovecot.add_user(name, password))


def _paths(home: Path) -> Paths:
    return Paths(home / "config.toml", home / "state", home / "logs")


def _calibrate(office: Office, tmp_path: Path) -> float:
    """Seconds a full, uninterrupted ``run --once`` takes on a mailbox of MAILBOX_SIZE messages."""
    user = _new_user(office.isp)
    home = tmp_path / "calibration"
    account = office.account_for(user, "calibration")
    save_config(Config(smtp=office.config.smtp, delivery=office.config.delivery, policies=office.config.policies,
                       accounts=(account,)), home / "config.toml")
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
    Credentials().delete_pop3_password("calibration")
    return duration


@pytest.mark.slow
def test_random_kills_lose_nothing(office: Office, pop3_user: Pop3User, tmp_path: Path,
                                   record_property: Any) -> None:
    seed = int(os.environ.get("POP3GUI_CRASH_SEED") or secrets.randbits(32))
    print(f"\ncrash test seed: POP3GUI_CRASH_SEED={seed}")
    record_property("crash_seed", seed)
    rng = random.Random(seed)
    started = time.monotonic()

    full_run = _calibrate(office, tmp_path)
    print(f"calibration: an uninterrupted run of {MAILBOX_SIZE} messages takes {full_run:.2f} s")
    office.use(office.account_for(pop3_user, "alice"))
    journal_db = office.paths.journal_db
    events_db = office.paths.events_db
    output = tmp_path / "runs.out"

    all_ids: list[str] = []
    kills = 0
    runs = 0
    clean_exits = 0
    other_exits: Counter[int] = Counter()
    odd_outputs: list[str] = []
    submitting_after_kill: Counter[str] = Counter()  # message keys a kill left in SUBMITTING
    rounds = 0
    while kills < MIN_KILLS:
        rounds += 1
        all_ids += _fill(office.isp, pop3_user.name, f"round{rounds}", MAILBOX_SIZE)
        for _attempt in range(400):
            delay = rng.uniform(0, full_run)
            runs += 1
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
                kills += 1
                for db in (journal_db, events_db):
                    check, keys = snapshot_integrity(db)
                    assert check == "ok", f"kill {kills} (seed {seed}, delay {delay:.3f} s): {db.name}: {check}"
                    if db == journal_db:
                        submitting_after_kill.update(keys)
                continue
            if code == 0:
                clean_exits += 1
                break
            other_exits[code] += 1
            odd_outputs.append(f"run {runs} exited {code}:\n" + output.read_text(errors="replace")[-3000:])
        else:
            pytest.fail(f"round {rounds} never finished clean (seed {seed}); output:\n" + "\n".join(odd_outputs[-3:]))

    # The last round ended with a clean run: the mailbox is empty, everything arrived.
    assert office.isp.messages(pop3_user.name) == []
    office.local.wait_for_delivered(len(all_ids), timeout=120)
    assert office.local.wait_for_queue_empty(60)
    copies = delivered_ids(office.local.delivered())
    expected = {message_key(m) for m in all_ids}
    lost = sorted(expected - set(copies))
    foreign = sorted(set(copies) - expected)
    extra = {key: n - 1 for key, n in copies.items() if n > 1}
    duplicates = sum(extra.values())
    elapsed = time.monotonic() - started

    summary = (f"crash test (seed {seed}): {rounds} round(s) of {MAILBOX_SIZE} messages, {runs} runs, "
               f"{kills} kills survived, {len(lost)} lost, {duplicates} duplicate(s), "
               f"{len(set(submitting_after_kill))} message(s) left 'submitting' by a kill, "
               f"exits other than 0: {dict(other_exits) or 'none'}, {elapsed:.0f} s")
    print(summary)
    for name, value in (("kills", kills), ("runs", runs), ("messages", len(all_ids)), ("lost", len(lost)),
                        ("duplicates", duplicates), ("seconds", round(elapsed))):
        record_property(f"crash_{name}", value)
    record_property("crash_summary", summary)

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
        "\n".join(odd_outputs[:3])
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
