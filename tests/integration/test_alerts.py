"""Alerts against a real Dovecot (the ISP) and a real Postfix (the office server).

Each cycle runs in a new :class:`Connector`, as a restarted runner would: what
keeps an alert from being said twice is the health store in the state folder.
The alert mail is read back from Postfix's Maildir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest

from pop3gui.core.config.model import AlertsConfig, DeliveryConfig, OAuthProviderConfig, ScheduleConfig, SmtpConfig
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.events.model import EventBus, EventId, Severity
from pop3gui.core.events.store import EventStore
from pop3gui.core.health.store import HealthStore
from pop3gui.core.schedule import WeekHours
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.spool import Quarantine
from tests.conftest import Pop3User
from tests.servers.dovecot import free_port
from tests.support.office import ADMIN, Office, make_message

pytestmark = pytest.mark.servers


async def cycle(office: Office, now: datetime | None = None) -> CycleResult:
    """One cycle in a fresh connector (a restart), optionally at a chosen local time."""
    bus = EventBus()
    store = EventStore(office.paths.events_db)
    bus.subscribe(store)
    bus.subscribe(office.events.append)
    connector = Connector(office.config, office.paths, bus)
    if now is not None:
        connector.now = lambda: now
    try:
        return await connector.run_cycle()
    finally:
        connector.close()
        store.close()


def alert_mails(office: Office) -> list[EmailMessage]:
    return [m for m in office.local.delivered() if m["X-Pop3gui-Alert"]]


def status(office: Office, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POP3GUI_HOME=str(office.home))
    return subprocess.run([sys.executable, "-m", "pop3gui", "status", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def alerting(office: Office, **alerts: object) -> None:
    office.use(*office.config.accounts,
               alerts=AlertsConfig(**{"mail_to": ADMIN, "no_mail_hours": 0, **alerts}))  # type: ignore[arg-type]


async def test_a_wrong_password_alerts_once_after_three_cycles_and_recovers_once(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"))
    alerting(office)
    Credentials().set_pop3_password("alice", "wrong-password")

    await cycle(office)
    assert status(office, "--nagios").returncode == 1  # one failed cycle: WARNING
    await cycle(office)
    assert not office.of(EventId.ALERT_RAISED) and not alert_mails(office)
    await cycle(office)

    raised = office.of(EventId.ALERT_RAISED)
    assert len(raised) == 1 and raised[0].severity == Severity.ERROR and raised[0].account == "alice"
    assert raised[0].text.startswith("Alert failed_cycles:") and str(raised[0].diagnosis) == "auth_failed"
    mail = office.local.wait_for_delivered(1)[0]
    assert str(mail["Delivered-To"]) == ADMIN
    assert str(mail["Subject"]) == "pop3gui: account alice has failed 3 cycles in a row"
    assert str(mail["Auto-Submitted"]) == "auto-generated"
    assert mail["Message-ID"] and mail["Date"] and str(mail["From"]) == "pop3gui <postmaster@contoso.com>"
    body = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "Since:" in body and "Fix:" in body and "pop3gui events --account alice" in body
    assert "pop3gui status" in body
    nagios = status(office, "--nagios")
    assert nagios.returncode == 2, nagios.stdout
    assert nagios.stdout.startswith("POP3GUI CRITICAL - account alice has failed 3 cycles in a row")
    assert "| failed=1 quarantined=0 alerts=1" in nagios.stdout

    await cycle(office)  # a restart and a fourth failure: nothing new
    await cycle(office)
    assert len(office.of(EventId.ALERT_RAISED)) == 1
    assert len(alert_mails(office)) == 1

    Credentials().set_pop3_password("alice", pop3_user.password)
    office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject="after the fix"))
    await cycle(office)
    assert len(office.of(EventId.ALERT_RECOVERED)) == 1
    office.local.wait_for_delivered(3)  # the message and two alert mails
    recovered = [m for m in alert_mails(office) if "recovered" in str(m["X-Pop3gui-Alert"])]
    assert [str(m["Subject"]) for m in recovered] == ["pop3gui: recovered: account alice works again"]
    await cycle(office)
    assert len(office.of(EventId.ALERT_RECOVERED)) == 1 and len(alert_mails(office)) == 2
    assert status(office, "--nagios").returncode == 0


async def test_alert_mail_waits_while_the_local_server_is_down_and_is_sent_later(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"))
    postfix = office.config.smtp
    alerting(office, failed_cycles=2)
    office.use(*office.config.accounts, smtp=SmtpConfig(host="127.0.0.1", port=free_port(), timeout_s=5))
    Credentials().set_pop3_password("alice", "wrong-password")

    for _ in range(4):
        await cycle(office)

    assert len(office.of(EventId.ALERT_RAISED)) == 1
    failed = office.of(EventId.ALERT_MAIL_FAILED)
    assert len(failed) == 1, "said once per outage, not at every cycle"
    assert ADMIN in failed[0].text and "next cycle" in failed[0].fix
    assert alert_mails(office) == []
    with HealthStore(office.paths.health_db) as store:
        assert [a.mailed for a in store.alerts()] == [False]

    office.use(*office.config.accounts, smtp=postfix)  # the local server is back
    await cycle(office)

    mail = office.local.wait_for_delivered(1)[0]
    assert str(mail["Subject"]) == "pop3gui: account alice has failed 2 cycles in a row"  # as when it began
    assert len(office.of(EventId.ALERT_MAILED)) == 1
    assert len(office.of(EventId.ALERT_RAISED)) == 1
    await cycle(office)
    assert len(alert_mails(office)) == 1


async def test_no_mail_counts_only_the_scheduled_hours(office: Office, pop3_user: Pop3User) -> None:
    hours = WeekHours.from_table({day: "9-17" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    office.use(office.account_for(pop3_user, "alice"), schedule=ScheduleConfig(hours=hours))
    alerting(office, no_mail_hours=4)
    monday = datetime(2030, 1, 7)  # a Monday

    await cycle(office, monday.replace(hour=16))  # counting starts here, not at 1970
    await cycle(office, monday + timedelta(days=1, hours=10))  # 18 hours later, but 16-17 and 9-10: two hours
    assert not office.of(EventId.ALERT_RAISED)
    await cycle(office, monday + timedelta(days=1, hours=11, minutes=30))  # 3.5 scheduled hours
    assert not office.of(EventId.ALERT_RAISED)
    await cycle(office, monday + timedelta(days=1, hours=12))  # 4 scheduled hours

    raised = office.of(EventId.ALERT_RAISED)
    assert len(raised) == 1 and raised[0].severity == Severity.WARNING and "Alert no_mail:" in raised[0].text
    mail = office.local.wait_for_delivered(1)[0]
    assert str(mail["Subject"]) == "pop3gui: account alice has received no mail for 4 hours"

    office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject="finally"))
    await cycle(office, monday + timedelta(days=1, hours=12, minutes=15))
    assert len(office.of(EventId.ALERT_RECOVERED)) == 1
    office.local.wait_for_delivered(3)
    assert any(str(m["Subject"]) == "pop3gui: recovered: account alice receives mail again"
               for m in alert_mails(office))


async def test_a_message_in_quarantine_too_long_alerts_even_when_cycles_fail(
        office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="huge"))
    # Postfix refuses the domain and there is no undeliverable mailbox: the message is kept in quarantine.
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"),
               delivery=DeliveryConfig(undeliverable_to=""))
    alerting(office, quarantine_hours=4, failed_cycles=0, mail_to="", policy_refusal=False)
    await cycle(office)
    quarantine = Quarantine(office.paths.quarantine_dir)
    assert len(list(quarantine.records())) == 1
    assert not office.of(EventId.ALERT_RAISED)

    Credentials().set_pop3_password("alice", "wrong-password")  # the cycles fail from now on
    later = datetime.now() + timedelta(hours=4, minutes=1)
    await cycle(office, later)
    raised = office.of(EventId.ALERT_RAISED)
    assert len(raised) == 1 and raised[0].text.startswith("Alert quarantine:") and "huge" in raised[0].text
    assert status(office, "--nagios").returncode == 1  # WARNING: quarantine and a failed cycle
    await cycle(office, later + timedelta(minutes=15))
    assert len(office.of(EventId.ALERT_RAISED)) == 1

    record = next(quarantine.records())
    quarantine.remove(record.id)
    await cycle(office, later + timedelta(minutes=30))
    assert len(office.of(EventId.ALERT_RECOVERED)) == 1


async def test_an_oauth_account_without_a_sign_in_alerts_at_once(office: Office, pop3_user: Pop3User) -> None:
    provider = OAuthProviderConfig(name="lab", client_id="pop3gui-test", token_url="https://127.0.0.1:9/token",
                                   authorize_url="https://127.0.0.1:9/authorize")
    office.use(office.account_for(pop3_user, "dave", auth="oauth2", oauth_provider="lab"),
               oauth_providers=(provider,))
    alerting(office)

    await cycle(office)

    raised = office.of(EventId.ALERT_RAISED)
    assert [e.text.split(":")[0] for e in raised] == ["Alert sign_in"]
    assert raised[0].severity == Severity.ERROR and str(raised[0].diagnosis) == "sign_in_needed"
    assert "pop3gui auth login dave" in raised[0].fix
    mail = office.local.wait_for_delivered(1)[0]
    assert str(mail["Subject"]) == "pop3gui: account dave needs an OAuth2 sign-in"
    result = status(office, "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    dave = document["accounts"][0]
    assert dave["sign_in"] in ("missing", "unknown") and dave["sign_in_needed"] is True
    assert [a["condition"] for a in document["alerts"]] == ["sign_in"]


async def test_a_recipient_refused_by_policy_alerts_until_the_refused_message_leaves_quarantine(
        office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject="for fabrikam"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"),
               delivery=DeliveryConfig(undeliverable_to=""))
    alerting(office)

    await cycle(office)

    raised = office.of(EventId.ALERT_RAISED)
    assert len(raised) == 1 and raised[0].text.startswith("Alert policy_refusal:")
    assert raised[0].recipient == "alice@fabrikam.com"
    mail = office.local.wait_for_delivered(1)[0]
    assert str(mail["Subject"]) == \
        "pop3gui: account alice: the local server refuses alice@fabrikam.com for a policy reason"
    await cycle(office)
    assert len(office.of(EventId.ALERT_RAISED)) == 1

    quarantine = Quarantine(office.paths.quarantine_dir)
    quarantine.remove(next(quarantine.records()).id)  # the admin dealt with it
    await cycle(office)
    assert len(office.of(EventId.ALERT_RECOVERED)) == 1


async def test_conditions_turned_off_raise_nothing(office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"))
    office.use(*office.config.accounts, alerts=replace(AlertsConfig(), mail_to=ADMIN, failed_cycles=0,
                                                      no_mail_hours=0))
    Credentials().set_pop3_password("alice", "wrong-password")
    for _ in range(4):
        await cycle(office)
    assert not office.of(EventId.ALERT_RAISED)
    assert alert_mails(office) == []
