"""Render every page of the properties window with sample data, offscreen.

``python -m pop3gui.gui.screenshots OUTDIR`` writes ``OUTDIR/<page>.png`` for
each tab and ``OUTDIR/account-editor.png``; README.md shows them.  The sample
office has the KB's problem on purpose: an account mapped to a domain no
recipient policy covers.
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
    Config,
    DeliveryConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    SmtpConfig,
)
from pop3gui.core.smtp.diagnose import diagnose_recipient, refusal_label  # noqa: E402
from pop3gui.core.events.model import Event, EventId, Outcome, Reply, Severity  # noqa: E402
from pop3gui.core.state.paths import Paths  # noqa: E402
from pop3gui.core.state.spool import Quarantine, QuarantineRecord  # noqa: E402

PAGES = ("accounts", "policies", "scheduling", "delivery", "events", "quarantine")

SAMPLE_CONFIG = Config(
    smtp=SmtpConfig(host="exchange.contoso.local", port=25),
    delivery=DeliveryConfig(undeliverable_to="administrator@contoso.com"),
    policies=(RecipientPolicy("Default Policy", ("contoso.com", "contoso.local"), "contoso.com"),),
    accounts=(
        AccountConfig(name="alice", host="pop.isp.example", username="alice@isp.example",
                      deliver_to="alice@contoso.com"),
        AccountConfig(name="office", host="pop.isp.example", username="office@isp.example", kind="global",
                      deliver_to=""),
        AccountConfig(name="erin", host="pop.isp.example", username="erin@isp.example",
                      deliver_to="erin@contoso.eu"),
    ),
    rules=(RoutingRuleConfig("office", "sales@", "sales-team@contoso.com"),),
)

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
        Event(EventId.CYCLE_STARTED, Severity.INFO, "Retrieving mail from 3 account(s).", time=at(0)),
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
        Event(EventId.CYCLE_FINISHED, Severity.WARNING, "Cycle finished: 2 message(s) delivered, 1 need attention.",
              time=at(5)),
    ]


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
    return paths


def render(outdir: Path) -> list[Path]:
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
        controller = ConnectorController(paths, SAMPLE_CONFIG)
        window = PropertiesWindow(controller)
        window.resize(1000, 680)
        window.show()
        for index, page in enumerate(PAGES):
            window.tabs.setCurrentIndex(index)
            if page == "events":
                window.events.model.flush()
                window.events.view.selectRow(5)
            if page == "quarantine":
                window.quarantine.view.selectRow(0)
            QApplication.processEvents()
            target = outdir / f"{page}.png"
            window.grab().save(str(target))
            written.append(target)
        dialog = AccountDialog(SAMPLE_CONFIG.accounts[1], other_names=["alice", "erin"],
                               local_domains=SAMPLE_CONFIG.local_domains(), rules=SAMPLE_CONFIG.rules)
        dialog.show()
        QApplication.processEvents()
        target = outdir / "account-editor.png"
        dialog.grab().save(str(target))
        written.append(target)
        dialog.close()
        window.hide()
        controller.close()
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
