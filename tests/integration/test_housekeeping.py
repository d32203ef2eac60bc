"""Housekeeping at the end of real cycles (Dovecot as the ISP, Postfix as the office server).

Each cycle runs in a fresh :class:`Connector` over the office's state folder,
as a restarted runner would; what is checked is on disk: the event store, the
journal, the quarantine folder.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from pop3gui.core.config.model import DeliveryConfig, EventsConfig
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.journal import KEEP_DELIVERIES_DAYS
from pop3gui.core.state.spool import Quarantine, QuarantineRecord
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

pytestmark = pytest.mark.servers

DAY = 86400.0


def old_events(office: Office, cutoff: datetime) -> int:
    db = sqlite3.connect(office.paths.events_db)
    try:
        return int(db.execute("SELECT count(*) FROM events WHERE time < ?", (cutoff.isoformat(),)).fetchone()[0])
    finally:
        db.close()


async def test_a_backlog_of_20000_expired_events_is_gone_within_three_cycles(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"), events=EventsConfig(keep_days=90, max_mb=200))
    office.paths.state_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(office.paths.events_db)
    long_ago = datetime.now(timezone.utc) - timedelta(days=400)
    store._db.execute("BEGIN")
    for i in range(20_000):
        store.append(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"Delivered to alice@contoso.com #{i}",
                           account="alice", time=long_ago + timedelta(seconds=i)))
    store._db.execute("COMMIT")
    store.close()
    cutoff = datetime.now(timezone.utc) - timedelta(days=90)
    left = []
    for n in range(3):
        office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject=f"cycle {n}"))
        assert (await office.run_cycle()).exit_code == 0
        left.append(old_events(office, cutoff))
    assert left[0] < 20_000 and left[-1] == 0, left
    office.local.wait_for_delivered(3)
    # This run's own events stay, the cycles' messages among them.
    kept = EventStore(office.paths.events_db)
    try:
        assert {e.subject for e in kept.query(account="alice") if e.id == EventId.MESSAGE_DELIVERED} >= {
            "cycle 0", "cycle 1", "cycle 2"}
    finally:
        kept.close()


async def test_the_journal_keeps_rows_of_mail_left_on_the_server_and_prunes_the_rest(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice", leave_on_server=True))
    office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject="kept on the server"))
    assert (await office.run_cycle()).exit_code == 0
    db = sqlite3.connect(office.paths.journal_db)
    aged = time.time() - (KEEP_DELIVERIES_DAYS + 10) * DAY
    with db:
        db.execute("UPDATE deliveries SET delivered_at = ?", (aged,))  # delivered long ago
        db.execute("INSERT INTO deliveries VALUES ('alice', 'v2:gone-long-ago', 'alice@contoso.com', ?)", (aged,))
    await office.run_cycle()  # the message is still listed: nothing is downloaded, nothing new is written
    keys = {str(r[0]) for r in db.execute("SELECT message_key FROM deliveries")}
    db.close()
    assert "v2:gone-long-ago" not in keys
    assert len(keys) == 1  # the message still on the server keeps its row, however old
    assert len(office.local.delivered()) == 1 and len(office.isp.messages(pop3_user.name)) == 1


async def test_quarantined_mail_is_listed_by_an_alert_then_removed_with_an_event(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"), delivery=DeliveryConfig(quarantine_keep_days=30))
    quarantine = Quarantine(office.paths.quarantine_dir)
    quarantine.add(make_message(to="alice@isp.example", subject="Refused long ago"), QuarantineRecord(
        "20300101-000000-alice", "alice", "UID1", "<refused@fabrikam.example>", "sender@fabrikam.example",
        "Refused long ago", "", ["alice@contoso.com"], "the local server refused every recipient", "550", "fix",
        "", time.time() - 40 * DAY))
    await office.run_cycle()
    [alert] = [e for e in office.of(EventId.ALERT_RAISED) if e.text.startswith("Alert quarantine_expiry")]
    assert "20300101-000000-alice" in alert.text and "Refused long ago" in alert.text
    assert not office.of(EventId.QUARANTINE_EXPIRED) and len(list(quarantine.records())) == 1
    await office.run_cycle()  # within the day after the alert: still kept
    assert not office.of(EventId.QUARANTINE_EXPIRED)
    health = sqlite3.connect(office.paths.health_db)
    with health:  # a day and a bit has passed since the alert
        health.execute("UPDATE quarantine_warning SET warned_at = warned_at - ?", (1.1 * DAY,))
    health.close()
    await office.run_cycle()
    [removed] = office.of(EventId.QUARANTINE_EXPIRED)
    assert "20300101-000000-alice" in removed.text and "sender@fabrikam.example" in removed.text
    assert removed.subject == "Refused long ago" and removed.account == "alice"
    assert list(quarantine.records()) == []
    await office.run_cycle()
    assert any(e.text.startswith("Alert quarantine_expiry ended") for e in office.of(EventId.ALERT_RECOVERED))
