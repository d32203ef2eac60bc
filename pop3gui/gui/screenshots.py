"""Render every page of the properties window with sample data, offscreen.

``python -m pop3gui.gui.screenshots OUTDIR`` writes ``OUTDIR/<page>.png`` for
each tab, ``OUTDIR/account-editor.png`` (a global mailbox with a password),
``OUTDIR/account-oauth.png`` (a Microsoft 365 mailbox, signed in with OAuth2)
and ``OUTDIR/account-imap.png`` (a shared mailbox fetched over IMAP from two
folders, its mail moved to Delivered, after List Server Folders); README.md
shows them.  The sample office has the KB's problem on purpose: an
account mapped to a domain no recipient policy covers; and its Microsoft 365
mailbox's sign-in has expired, as the Mail Accounts page says.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pop3gui.core.config.model import (  # noqa: E402
    AccountConfig,
    AlertsConfig,
    Config,
    DeliveryConfig,
    OAuthProviderConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    ScheduleConfig,
    SmtpConfig,
)
from pop3gui.core.engine.findings import Finding  # noqa: E402
from pop3gui.core.engine.status import AccountResult, AccountStatus, Phase  # noqa: E402
from pop3gui.core.failures import Failure  # noqa: E402
from pop3gui.core.oauth.store import SignIn  # noqa: E402
from pop3gui.core.schedule import WeekHours  # noqa: E402
from pop3gui.core.smtp.diagnose import diagnose_recipient, refusal_label  # noqa: E402
from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity  # noqa: E402
from pop3gui.core.state.paths import Paths  # noqa: E402
from pop3gui.core.state.spool import Quarantine, QuarantineRecord  # noqa: E402

PAGES = ("accounts", "policies", "scheduling", "delivery", "events", "quarantine", "alerts")
DIALOGS = ("account-editor", "account-oauth", "account-imap")

SAMPLE_PROVIDER = OAuthProviderConfig(name="contoso-entra", client_id="11111111-2222-3333-4444-555555555555",
                                      kind="microsoft", tenant="contoso.onmicrosoft.com")

SAMPLE_CONFIG = Config(
    smtp=SmtpConfig(host="exchange.contoso.local", port=25),
    delivery=DeliveryConfig(undeliverable_to="administrator@contoso.com"),
    alerts=AlertsConfig(mail_to="administrator@contoso.com"),
    policies=(RecipientPolicy("Default Policy", ("contoso.com", "contoso.local"), "contoso.com"),),
    accounts=(
        AccountConfig(name="alice", host="pop.isp.example", username="alice@isp.example",
                      deliver_to="alice@contoso.com"),
        AccountConfig(name="office", host="pop.isp.example", username="office@isp.example", kind="global",
                      deliver_to=""),
        AccountConfig(name="erin", host="pop.isp.example", username="erin@isp.example",
                      deliver_to="erin@contoso.eu"),
        AccountConfig(name="dave-m365", host="outlook.office365.com", username="dave@contoso.com",
                      deliver_to="dave@contoso.com", auth="oauth2", oauth_provider=SAMPLE_PROVIDER.name),
        AccountConfig(name="orders", host="imap.isp.example", protocol="imap", port=993,
                      username="orders@isp.example", deliver_to="orders@contoso.com", folders=("INBOX", "Orders"),
                      after_delivery="move", move_to="Delivered"),
    ),
    rules=(RoutingRuleConfig("office", "sales@", "sales-team@contoso.com"),),
    oauth_providers=(SAMPLE_PROVIDER,),
    # The office's working hours and Saturday morning; the Scheduling page shows them in its grid.
    schedule=ScheduleConfig(interval_min=15, hours=WeekHours.from_table(
        {"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19", "sat": "9-12", "sun": ""})),
)

SAMPLE_NOW = datetime(2026, 11, 27, 18, 50)  # a Friday evening: the next run waits for Saturday's hours

TRANSCRIPT = """<S>: 220 exchange.contoso.local Microsoft ESMTP MAIL Service ready
<C>: EHLO connector.contoso.local
<S>: 250-exchange.contoso.local Hello
<S>: 250 SIZE 26214400
<C>: MAIL FROM:<sender@fabrikam.example>
<S>: 250 2.1.0 Sender OK
<C>: RCPT TO:<erin@contoso.eu>
<S>: 550 5.7.1 Unable to relay
<C>: RSET
<S>: 250 2.0.0 Resetting"""


def sample_events() -> list[Event]:
    t0 = datetime.now(timezone.utc) - timedelta(minutes=3)

    def at(seconds: int) -> datetime:
        return t0 + timedelta(seconds=seconds)

    refusal = diagnose_recipient(550, "5.7.1 Unable to relay", "erin@contoso.eu")  # what a run would say

    return [
        Event(EventId.CYCLE_STARTED, Severity.INFO, "Retrieving mail from 5 account(s).", time=at(0)),
        Event(EventId.POLICY_WARNING, Severity.WARNING,
              "The local recipient of account 'erin' is erin@contoso.eu, but no recipient policy covers the domain "
              "contoso.eu",
              fix="Add contoso.eu to a recipient policy.", time=at(0)),
        Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "Delivered to alice@contoso.com.", account="alice",
              subject="Quarterly figures", uid="UID1", recipient="alice@contoso.com", outcome=Outcome.DELIVERED,
              time=at(2)),
        Event(EventId.FOREIGN_RECIPIENTS_DROPPED, Severity.INFO,
              "Not delivering to 1 address(es) outside the recipient policies: partner@fabrikam.example.",
              account="office", subject="Project kick-off", time=at(3)),
        Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "Delivered to bob@contoso.com, carol@contoso.com.",
              account="office", subject="Project kick-off", time=at(3)),
        Event(EventId.RECIPIENT_REFUSED, Severity.ERROR,
              f"The local server refused recipient erin@contoso.eu{refusal_label(refusal.kind)}: "
              "550 5.7.1 Unable to relay", account="erin", subject="Invoice 4711", uid="UID9",
              cause=refusal.cause, fix=refusal.fix, transcript=TRANSCRIPT, recipient="erin@contoso.eu",
              reply=Reply(550, "5.7.1", "Unable to relay"), diagnosis=refusal.kind, time=at(4)),
        Event(EventId.DIVERTED_TO_UNDELIVERABLE, Severity.WARNING,
              "Sent to the undeliverable mailbox administrator@contoso.com with a notice.", account="erin",
              subject="Invoice 4711", recipient="erin@contoso.eu", diagnosis=refusal.kind,
              outcome=Outcome.DIVERTED, time=at(4)),
        Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "Delivered to orders@contoso.com.", account="orders",
              subject="Order 10342", uid="imap:1712000000:7:Orders", recipient="orders@contoso.com", outcome=Outcome.DELIVERED,
              time=at(4)),
        Event(EventId.SIGN_IN_FAILED, Severity.ERROR, SIGN_IN_EXPIRED[0], account="dave-m365",
              cause=SIGN_IN_EXPIRED[1], fix=SIGN_IN_EXPIRED[2], diagnosis=Failure.SIGN_IN_NEEDED, time=at(4)),
        Event(EventId.CYCLE_FINISHED, Severity.WARNING, "Cycle finished: 3 message(s) delivered, 1 need attention; "
              "failed account(s): dave-m365.", time=at(5)),
    ]


SIGN_IN_EXPIRED = (
    "the sign-in is no longer valid: invalid_grant: AADSTS700082: The refresh token has expired due to inactivity.",
    "The sign-in expired: it was not used for 90 days.",
    "Sign in again with `pop3gui auth login dave-m365`.",
)


def sample_statuses() -> list[AccountStatus]:
    """What the sample run did with each account, as the Mail Accounts page shows it."""
    moment = datetime.now(timezone.utc) - timedelta(minutes=3)
    expired = AccountResult("dave-m365")
    expired.fail(SIGN_IN_EXPIRED[0], diagnosis=Failure.SIGN_IN_NEEDED, cause=SIGN_IN_EXPIRED[1],
                 fix=SIGN_IN_EXPIRED[2])
    return [
        AccountStatus("alice", Phase.DONE, result=AccountResult("alice", delivered=1), time=moment),
        AccountStatus("office", Phase.DONE, result=AccountResult("office", delivered=1), time=moment),
        AccountStatus("erin", Phase.DONE, result=AccountResult("erin", diverted=1), time=moment),
        AccountStatus("dave-m365", Phase.FAILED, result=expired, time=moment),
        AccountStatus("orders", Phase.DONE, result=AccountResult("orders", delivered=1), time=moment),
    ]

# What List Server Folders found for the IMAP account (the folders of a small shop's mailbox).
SAMPLE_FOLDERS = ("INBOX", "Drafts", "Sent", "Trash", "Junk", "Orders", "Orders/Returns", "Delivered")
SAMPLE_FINDING = Finding(True, "account 'orders'", "logged in to imap.isp.example:993 (IMAP); INBOX: 3 message(s); "
                         "Orders: 1 message(s); handled mail moves to Delivered; new mail is pushed (IDLE)",
                         folders=SAMPLE_FOLDERS)


async def _never_called(account: AccountConfig, password: str | None) -> Finding:
    """What List Server Folders would run: the screenshot shows its result (SAMPLE_FINDING) without a server."""
    return SAMPLE_FINDING


def seed(home: Path) -> Paths:
    from pop3gui.core.config.save import save_config
    from pop3gui.core.events.store import EventStore

    paths = Paths(home / "config.toml", home / "state", home / "logs")
    save_config(SAMPLE_CONFIG, paths.config_file)
    store = EventStore(paths.events_db)
    for event in sample_events():
        store.append(event)
    store.close()
    quarantine = Quarantine(paths.quarantine_dir)
    message = home / "sample.eml"
    message.write_bytes(b"From: Big Sender <big@fabrikam.example>\r\nTo: alice@isp.example\r\n"
                        b"Subject: Site photos (180 MB)\r\n\r\n...\r\n")
    quarantine.add(message, QuarantineRecord(
        id="20261127-081500-alice", account="alice", uid="UID77", message_id="<photos@fabrikam.example>",
        sender="big@fabrikam.example", subject="Site photos (180 MB)", date="", recipients=["alice@contoso.com"],
        reason="The local mail server refused: alice@contoso.com: 552 5.3.4 Message size exceeds fixed limit; "
        "the undeliverable mailbox refused it too",
        cause="The local mail server refuses messages of this size.",
        fix="Raise the local server's message size limit, or lower delivery.max_message_kb.", transcript="",
        quarantined_at=datetime.now().timestamp() - 3600))
    seed_alerts(paths)
    return paths


def seed_alerts(paths: Paths) -> None:
    """One active alert and one that recovered, as the Alerts page lists them."""
    from pop3gui.core.health.conditions import Condition, alert_key
    from pop3gui.core.health.store import AlertRow, HealthStore

    now = datetime.now().timestamp()
    with HealthStore(paths.health_db) as store, store.transaction() as db:
        store.insert_alert(db, AlertRow(
            key=alert_key(Condition.FAILED_CYCLES, "erin"), condition=Condition.FAILED_CYCLES, account="erin",
            recipient="", severity="error", subject="pop3gui: account erin has failed 3 cycles in a row",
            text="Login to pop.isp.example refused: -ERR [AUTH] Authentication failed.",
            cause="The ISP refused the user name or password.",
            fix="Check the password of erin@isp.example (Mail Accounts > Edit > Set password).",
            started_at=now - 2 * 3600, mailed=True))
        store.insert_alert(db, AlertRow(
            key=alert_key(Condition.NO_MAIL, "office"), condition=Condition.NO_MAIL, account="office",
            recipient="", severity="warning", subject="pop3gui: account office has received no mail for 24 hours",
            text="No message was downloaded in 24 of the schedule's hours.", cause="", fix="",
            started_at=now - 30 * 3600, ended_at=now - 5 * 3600, mailed=True, recovery_mailed=True))


def render(outdir: Path) -> list[Path]:
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.dialogs.account import AccountDialog
    from pop3gui.gui.properties import PropertiesWindow
    from pop3gui.gui.qt import make_application

    app = make_application()
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="pop3gui-screens-") as tmp:
        paths = seed(Path(tmp))
        controller = ConnectorController(paths, SAMPLE_CONFIG, now=lambda: SAMPLE_NOW)
        window = PropertiesWindow(controller)
        window.resize(1000, 680)
        for status in sample_statuses():
            window.accounts.model.on_account_status(status)
        window.accounts.table.resizeColumnsToContents()
        window.show()
        for index, page in enumerate(PAGES):
            window.tabs.setCurrentIndex(index)
            if page == "events":
                window.events.model.flush()
                window.events.view.selectRow(5)
            if page == "quarantine":
                window.quarantine.view.selectRow(0)
            if page == "alerts":
                window.alerts.refresh()
            QApplication.processEvents()
            target = outdir / f"{page}.png"
            window.grab().save(str(target))
            written.append(target)
        dialog = AccountDialog(SAMPLE_CONFIG.accounts[1], other_names=["alice", "erin"],
                               local_domains=SAMPLE_CONFIG.local_domains(), rules=SAMPLE_CONFIG.rules,
                               providers=SAMPLE_CONFIG.oauth_providers)
        dialog.show()
        QApplication.processEvents()
        target = outdir / "account-editor.png"
        dialog.grab().save(str(target))
        written.append(target)
        dialog.close()
        dialog.deleteLater()
        dialog = AccountDialog(SAMPLE_CONFIG.accounts[3], other_names=["alice", "office", "erin"],
                               local_domains=SAMPLE_CONFIG.local_domains(), providers=SAMPLE_CONFIG.oauth_providers,
                               signer=controller)
        signed_in = (datetime.now() - timedelta(days=2)).replace(hour=9, minute=12).timestamp()
        dialog.sign_in_box.show_record(SignIn("", "dave@contoso.com", "", signed_in, signed_in))
        dialog.show()
        QApplication.processEvents()
        target = outdir / "account-oauth.png"
        dialog.grab().save(str(target))
        written.append(target)
        dialog.close()
        dialog.deleteLater()
        dialog = AccountDialog(SAMPLE_CONFIG.accounts[4], other_names=["alice", "office", "erin", "dave-m365"],
                               local_domains=SAMPLE_CONFIG.local_domains(), providers=SAMPLE_CONFIG.oauth_providers,
                               check=_never_called)
        dialog.imap_section.show_finding(SAMPLE_FINDING)
        dialog.show()
        QApplication.processEvents()
        target = outdir / "account-imap.png"
        dialog.grab().save(str(target))
        written.append(target)
        dialog.close()
        dialog.deleteLater()
        window.hide()
        window.deleteLater()
        controller.close()
        controller.deleteLater()
        # Delete the widgets here, children before parents as Qt does, not in some later garbage collection
        # (which may free a parent's Python wrapper before its children's and crash).
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pop3gui.gui.screenshots OUTDIR", file=sys.stderr)
        return 2
    for path in render(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
