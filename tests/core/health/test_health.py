"""The health store and the alert conditions, without servers: SQLite shared by processes, and each condition's rule."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pop3gui.core.config.model import AccountConfig, AlertsConfig, Config, RecipientPolicy, ScheduleConfig
from pop3gui.core.errors import StateError
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.health.conditions import due_alerts
from pop3gui.core.health.mail import alert_message, alert_sender
from pop3gui.core.health.monitor import AccountOutcome, HealthMonitor
from pop3gui.core.health.preflight import alert_findings
from pop3gui.core.health.status import runner_running
from pop3gui.core.health.store import AccountHealth, HealthStore
from pop3gui.core.schedule import WeekHours
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import Paths

ACCOUNT = AccountConfig(name="alice", host="pop.isp.example", username="alice@isp.example",
                        deliver_to="alice@contoso.com")
CONFIG = Config(accounts=(ACCOUNT,), policies=(RecipientPolicy("Default", ("contoso.com",), "contoso.com"),),
                alerts=AlertsConfig(no_mail_hours=0))
MONDAY = datetime(2030, 1, 7, 8, 0)


def paths_under(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")


async def _no_session() -> SmtpSubmitter:
    raise AssertionError("no alert mail is due without mail_to")


def monitor(tmp_path: Path, config: Config, clock: list[datetime]) -> tuple[HealthMonitor, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return HealthMonitor(config, paths_under(tmp_path), bus, open_session=_no_session, now=lambda: clock[0]), events


# -- the store ------------------------------------------------------------------------------


def test_the_store_is_wal_private_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "health.sqlite3"
    with HealthStore(path) as store, store.transaction() as db:
        store.save_account(db, AccountHealth("alice", first_seen=1.0, failed_cycles=2))
    assert path.stat().st_mode & 0o077 == 0
    with HealthStore(path, create=False) as store:
        assert store.accounts()["alice"].failed_cycles == 2
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_missing_or_damaged_store_is_a_state_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no cycle has run yet"):
        HealthStore(tmp_path / "none.sqlite3", create=False)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as caught:
        HealthStore(junk, create=False)
    assert "remove" in caught.value.fix


def _writer(path: str, name: str) -> None:
    for i in range(50):
        with HealthStore(Path(path)) as store, store.transaction() as db:
            store.save_account(db, AccountHealth(name, first_seen=float(i), failed_cycles=i))


def test_processes_write_and_read_it_at_once(tmp_path: Path) -> None:
    path = tmp_path / "health.sqlite3"
    HealthStore(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), f"account{n}")) for n in range(3)]
    for worker in workers:
        worker.start()
    reads = 0
    while any(w.is_alive() for w in workers):
        with HealthStore(path, create=False) as store:
            store.accounts()
            reads += 1
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    with HealthStore(path, create=False) as store:
        assert {h.failed_cycles for h in store.accounts().values()} == {49}
    assert reads > 0


def test_the_runner_is_seen_without_taking_its_lock(tmp_path: Path) -> None:
    lock = tmp_path / "runner.lock"
    assert runner_running(lock) is False
    with RunnerLock(lock):
        assert runner_running(lock) is True
        assert lock.read_text() != ""  # its pid stays in the file
    assert runner_running(lock) is False
    with RunnerLock(lock):  # and the probe left the lock free for a runner
        pass


# -- the conditions ---------------------------------------------------------------------------


async def test_failed_cycles_raise_once_and_recover_once(tmp_path: Path) -> None:
    clock = [MONDAY]
    mon, events = monitor(tmp_path, CONFIG, clock)
    failed = AccountOutcome("alice", True, False, "auth_failed", "the server refused the login", "wrong", "fix it")
    for _ in range(5):
        await mon.after_cycle([failed])
        clock[0] += timedelta(minutes=15)
    assert [int(e.id) for e in events] == [int(EventId.ALERT_RAISED)]
    assert "failed 3 cycles in a row" in events[0].text
    mon2, events2 = monitor(tmp_path, CONFIG, clock)  # a restart
    await mon2.after_cycle([failed])
    assert events2 == []
    await mon2.after_cycle([AccountOutcome("alice", False, True)])
    assert [int(e.id) for e in events2] == [int(EventId.ALERT_RECOVERED)]
    with HealthStore(paths_under(tmp_path).health_db) as store:
        assert store.alerts() == []  # nothing left to mail: the event log keeps the history
        assert store.accounts()["alice"].failed_cycles == 0


def test_no_mail_counts_scheduled_hours_from_the_first_cycle() -> None:
    hours = WeekHours.from_table({"sat": "", "sun": ""})  # weekdays all day
    config = Config(accounts=(ACCOUNT,), schedule=ScheduleConfig(hours=hours), alerts=AlertsConfig(no_mail_hours=24))
    friday = datetime(2030, 1, 11, 12, 0)
    seen = AccountHealth("alice", first_seen=friday.timestamp())
    monday_noon = friday + timedelta(days=3)  # 72 hours, of which 12 + 12 are scheduled
    assert due_alerts(config, {"alice": seen}, [], [], smtp_sign_in_needed=False, now=monday_noon - timedelta(minutes=1)) == {}
    due = due_alerts(config, {"alice": seen}, [], [], smtp_sign_in_needed=False, now=monday_noon)
    assert list(due) == ["no_mail:alice"]
    assert due_alerts(config, {}, [], [], smtp_sign_in_needed=False, now=monday_noon) == {}  # never run: unknown


def test_turned_off_conditions_are_never_due() -> None:
    off = Config(accounts=(ACCOUNT,), alerts=AlertsConfig(no_mail_hours=0, failed_cycles=0, quarantine_hours=0,
                                                          sign_in=False, policy_refusal=False))
    health = AccountHealth("alice", first_seen=0.0, failed_cycles=99, sign_in_needed=True)
    assert due_alerts(off, {"alice": health}, [], [], smtp_sign_in_needed=True, now=MONDAY) == {}


def test_the_alert_mail_is_a_proper_auto_generated_message() -> None:
    from pop3gui.core.health.store import AlertRow

    config = Config(policies=CONFIG.policies, alerts=AlertsConfig(mail_to="admin@contoso.com"))
    row = AlertRow("failed_cycles:alice", "failed_cycles", "alice", "", "error",
                   "pop3gui: account alice has failed 3 cycles in a row", "what", "why", "how", MONDAY.timestamp())
    message = alert_message(row, config, recovery=False, now=MONDAY)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"] == "pop3gui <postmaster@contoso.com>" and message["To"] == "admin@contoso.com"
    assert message["Message-ID"].endswith("@contoso.com>") and message["Date"]
    assert "Cause:     why" in message.get_content() and "pop3gui events --account alice" in message.get_content()
    recovered = alert_message(row, config, recovery=True, now=MONDAY)
    assert recovered["Subject"] == "pop3gui: recovered: account alice works again"
    assert "could not be sent at the time" in recovered.get_content()  # its start was never mailed
    assert alert_sender(Config(alerts=AlertsConfig(mail_to="it@fabrikam.example"))) == "postmaster@fabrikam.example"


def test_preflight_findings_for_alerts() -> None:
    assert alert_findings(CONFIG) == []
    outside = Config(policies=CONFIG.policies, alerts=AlertsConfig(mail_to="it@fabrikam.example"))
    [finding] = alert_findings(outside)
    assert finding.ok and "relay" in finding.text and "fabrikam.example" in finding.text  # the probe decides
    no_policy = Config(alerts=AlertsConfig(mail_to="admin@contoso.com"))
    assert any("postmaster@contoso.com" in f.text for f in alert_findings(no_policy))


def test_a_damaged_store_is_an_event_not_a_crash(tmp_path: Path) -> None:
    import asyncio

    paths = paths_under(tmp_path)
    paths.state_dir.mkdir(parents=True)
    paths.health_db.write_bytes(b"garbage" * 1000)
    clock = [MONDAY]
    mon, events = monitor(tmp_path, CONFIG, clock)
    asyncio.run(mon.after_cycle([AccountOutcome("alice", True, False)]))
    assert [int(e.id) for e in events] == [int(EventId.SPOOL_FAILED)]
    assert "remove" in events[0].fix
    assert sqlite3  # the module is the store's
