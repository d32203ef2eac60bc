"""The sandbox's shared mailbox reached over IMAP: delivered, moved to Delivered, reported, pushed with IDLE."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import keyring

from pop3gui.core.engine.connections import imap_client
from pop3gui.core.engine.preflight import run_preflight
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.credentials import POP3_SERVICE, Credentials
from pop3gui.demo.sandbox import Sandbox
from pop3gui.demo.story import (
    ACCOUNTS,
    IMAP_ACCOUNT,
    IMAP_SUBJECT,
    IMAP_USER,
    INVOICE_SUBJECT,
    INVOICES_FOLDER,
    MOVE_TO,
)
from tests.demo.test_demo import demo


def subjects(data: list[bytes]) -> list[str]:
    return [re.search(rb"^Subject: (.*)\r$", m, re.M).group(1).decode() for m in data]  # type: ignore[union-attr]


async def test_the_imap_mailbox_is_delivered_then_moved_to_delivered_and_the_report_tells_it(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        account = sb.config.account(IMAP_ACCOUNT)
        assert (account.protocol, account.kind, account.after_delivery) == ("imap", "global", "move")
        assert account.folders == ("INBOX", INVOICES_FOLDER) and account.move_to == MOVE_TO
        assert sb.imap.folders(IMAP_USER) == ["INBOX", INVOICES_FOLDER]  # Delivered: made at the first move
        events: list[Event] = []
        bus = EventBus()
        bus.subscribe(events.append)
        await sb.sign_in()
        preflight = await run_preflight(sb.config, sign_ins=SignIns(Credentials(), sb.paths.sign_in_locks))
        [found] = [f for f in preflight.findings if f.subject == f"account '{IMAP_ACCOUNT}'"]
        assert found.ok and "INBOX: 1 message(s); Invoices: 1 message(s)" in found.text
        assert "handled mail moves to Delivered (created at the first move)" in found.text
        connector = sb.connector(bus)
        try:
            first = await connector.run_cycle()
            [info] = [a for a in first.accounts if a.account == IMAP_ACCOUNT]
            assert not info.failed and info.errors == [] and info.delivered == 2

            # Each message went to whom it is addressed, through the same checks as POP3 mail.
            assert [m.subject for m in sb.exchange.messages(IMAP_USER)] == [IMAP_SUBJECT]
            assert [m.subject for m in sb.exchange.messages(ACCOUNTS)] == [INVOICE_SUBJECT]
            # Then moved, not deleted: the folders are empty, Delivered (created on the way) holds both.
            assert sb.imap.messages(IMAP_USER) == [] and sb.imap.messages(IMAP_USER, INVOICES_FOLDER) == []
            assert sorted(subjects(sb.imap.messages(IMAP_USER, MOVE_TO))) == sorted([IMAP_SUBJECT, INVOICE_SUBJECT])
            assert sb.imap.flags(IMAP_USER, MOVE_TO) == [set(), set()]  # fetched with BODY.PEEK[]: still unread
            assert sb.imap.commands["UID MOVE"] == 3 and sb.imap.commands["CREATE"] == 1  # one NO [TRYCREATE]
            assert sum(1 for e in events if e.id == EventId.MESSAGE_MOVED and e.account == IMAP_ACCOUNT) == 2

            report = sb.report(events, preflight)
            assert report.as_designed, report.problems
            story = sb.imap_story()
            assert story.logins == ["AUTHENTICATE PLAIN", "AUTHENTICATE PLAIN"]  # the check, then the run
            assert sorted(m.recipient for m in story.delivered) == [ACCOUNTS, IMAP_USER]
            summary = report.summary()
            imap = summary.split(f"IMAP mailbox {IMAP_USER}")[1].split("OAuth2 mailbox")[0]
            assert f"(account {IMAP_ACCOUNT}, a global mailbox on the fake ISP's IMAP server 127.0.0.1:" \
                   f"{sb.imap.port})" in imap
            assert re.search(rf"delivered from INBOX and Invoices:\n +{ACCOUNTS} +<- {INVOICE_SUBJECT}\n"
                             rf" +{IMAP_USER} +<- {re.escape(IMAP_SUBJECT)}\n", imap), imap
            assert f'moved to the folder Delivered after delivery, where the ISP keeps it (after_delivery = "move"): ' \
                   f"{IMAP_SUBJECT}, {INVOICE_SUBJECT}" in imap
            assert "still in INBOX and Invoices: nothing" in imap

            # Nothing is delivered twice; new mail in either folder is delivered and moved too.
            delivered = len(sb.exchange.messages())
            second = await connector.run_cycle()
            assert sum(a.downloaded for a in second.accounts) == 0 and len(sb.exchange.messages()) == delivered
            sb.send_to_isp(IMAP_ACCOUNT, "Invoice 2024-118", folder=INVOICES_FOLDER, to=ACCOUNTS)
            sb.send_to_isp(IMAP_ACCOUNT, "Do you deliver to Lyon?")
            third = await connector.run_cycle()
            [info] = [a for a in third.accounts if a.account == IMAP_ACCOUNT]
            assert info.delivered == 2 and third.exit_code == 0
            assert [m.subject for m in sb.exchange.messages(ACCOUNTS)] == [INVOICE_SUBJECT, "Invoice 2024-118"]
            assert [m.subject for m in sb.exchange.messages(IMAP_USER)] == [IMAP_SUBJECT, "Do you deliver to Lyon?"]
            assert len(sb.imap.messages(IMAP_USER, MOVE_TO)) == 4 and sb.imap.messages(IMAP_USER) == []
        finally:
            connector.close()


async def test_without_its_password_the_imap_mailbox_keeps_its_mail_and_the_report_says_so(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        keyring.set_password(POP3_SERVICE, IMAP_ACCOUNT, "not-the-password")
        events: list[Event] = []
        bus = EventBus()
        bus.subscribe(events.append)
        connector = sb.connector(bus)
        try:
            result = await connector.run_cycle()
        finally:
            connector.close()
        [info] = [a for a in result.accounts if a.account == IMAP_ACCOUNT]
        assert info.failed
        assert subjects(sb.imap.messages(IMAP_USER)) == [IMAP_SUBJECT]
        report = sb.report(events)
        assert f"nothing was delivered to {IMAP_USER}" in report.problems
        assert f"{IMAP_SUBJECT!r} of the IMAP mailbox was not moved to {MOVE_TO}" in report.problems
        assert "messages stayed in the IMAP mailbox's folders" in report.problems
        summary = report.summary()
        assert "never logged in to the IMAP server" in summary
        assert "delivered from INBOX and Invoices: nothing" in summary
        assert f"still in INBOX: {IMAP_SUBJECT}\n  still in Invoices: {INVOICE_SUBJECT}" in summary
        assert "The demo did NOT run as designed (exit 1)" in summary


async def test_new_mail_is_announced_at_once_to_a_connector_waiting_with_idle(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        account = sb.config.account(IMAP_ACCOUNT)
        assert account.idle
        client = imap_client(account)  # as the connector's IDLE watcher opens it
        await client.connect()
        try:
            assert client.has_idle
            await client.login(account.username, Credentials().pop3_password(IMAP_ACCOUNT))
            await client.select("INBOX", readonly=True)
            idling = asyncio.create_task(client.idle(stop=asyncio.Event(), wait=10))
            for _ in range(200):
                if sb.imap.idling(IMAP_USER) == ["INBOX"]:
                    break
                await asyncio.sleep(0.01)
            assert sb.imap.idling(IMAP_USER) == ["INBOX"]
            sb.send_to_isp(IMAP_ACCOUNT, "Are you open on Saturday?")
            assert await asyncio.wait_for(idling, 2) is True
        finally:
            await client.logout()


def test_headless_demo_tells_the_imap_mailbox_part() -> None:
    out = demo()
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert re.search(r"^\[ok\] account 'info': logged in to 127\.0\.0\.1:\d+ \(IMAP\); INBOX: 1 message\(s\); "
                     r"Invoices: 1 message\(s\); handled mail moves to Delivered \(created at the first move\)",
                     text, re.M), text
    assert "[info] Moved 1 handled message(s) from INBOX to Delivered." in text
    assert "[info] Moved 1 handled message(s) from Invoices to Delivered." in text
    summary = text.split("== What happened ==")[1]
    assert re.search(rf"^  {re.escape(ACCOUNTS)} +<- {INVOICE_SUBJECT}$", summary, re.M)
    assert re.search(rf"^  {re.escape(IMAP_USER)} +<- {re.escape(IMAP_SUBJECT)}$", summary, re.M)
    imap = summary.split(f"IMAP mailbox {IMAP_USER}")[1].split("OAuth2 mailbox")[0]
    assert "logged in to the IMAP server 2 time(s) with AUTHENTICATE PLAIN" in imap
    assert "still in INBOX and Invoices: nothing" in imap
    assert "The demo ran as designed (exit 0)" in summary
