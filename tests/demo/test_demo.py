"""The demo sandbox: `pop3gui demo --headless --once`, the Sandbox with the real Connector, its servers."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keyring.core
import pytest

from pop3gui.core.errors import Pop3AuthError, Pop3InUseError
from pop3gui.core.events.model import Event, EventBus
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.engine.preflight import run_preflight
from pop3gui.demo.exchange import DemoExchange
from pop3gui.demo.pop3_server import DemoPop3Server
from pop3gui.core.state.spool import Quarantine
from pop3gui.demo.sandbox import DELIVERED, ERIN, KB_SUBJECT, UNDELIVERABLE, Sandbox


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo with the real keyring unusable, to prove the demo does not need it."""
    env = {k: v for k, v in os.environ.items() if k != "POP3GUI_HOME"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return subprocess.run([sys.executable, "-m", "pop3gui", "demo", "--headless", "--once", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def sandbox_folder(stdout: str) -> Path:
    match = re.search(r"^pop3gui demo sandbox in (.+)$", stdout, re.M)
    assert match, stdout
    return Path(match.group(1))


# --- the command -------------------------------------------------------------------


def test_headless_demo_runs_as_designed_and_explains_the_kb_failure() -> None:
    started = time.monotonic()
    out = demo()
    took = time.monotonic() - started

    assert out.returncode == 0, out.stdout + out.stderr  # the designed refusal is not a demo failure
    assert took < 15
    text = out.stdout
    # check flags both addresses in the new domain before any mail flows
    assert "[PROBLEM] erin@contoso.eu: The local recipient of account 'erin' is erin@contoso.eu" in text
    assert "[PROBLEM] postmaster@contoso.eu: The mailbox for undeliverable mail is postmaster@contoso.eu" in text
    # the summary, read from the Exchange's Maildirs and the quarantine
    summary = text.split("== What happened ==")[1]
    for address in DELIVERED:
        assert re.search(rf"^  {re.escape(address)} +<- ", summary, re.M), (address, summary)
    assert "Board agenda (Bcc copy)" in summary
    assert "contoso.eu " not in summary.split("Refused by the Exchange")[0]  # nothing delivered to contoso.eu
    refused = summary.split("Refused by the Exchange:")[1].split("Quarantined:")[0]
    assert "erin@contoso.eu: 550 5.7.1 Unable to relay for erin@contoso.eu" in refused
    cause = re.search(r"cause: (.*)", refused)
    fix = re.search(r"fix: (.*)", refused)
    assert cause and "contoso.eu" in cause.group(1)
    assert fix and "Add contoso.eu" in fix.group(1)
    quarantined = summary.split("Quarantined:")[1].split("Still on the POP3 server")[0]
    assert quarantined.startswith(" 1\n")
    assert f"'{KB_SUBJECT}' from account erin" in quarantined
    assert ("The local mail server refused: erin@contoso.eu: 550 5.7.1 Unable to relay for erin@contoso.eu; "
            "the undeliverable mailbox postmaster@contoso.eu refused it too: 550 5.7.1") in quarantined
    assert "Still on the POP3 server: nothing" in summary
    assert "partner@fabrikam.example" not in summary
    assert "The demo ran as designed (exit 0)" in summary
    # without --keep the sandbox folder is gone
    assert not sandbox_folder(text).exists()


def test_headless_summary_says_the_message_is_in_quarantine_and_how_to_deliver_it() -> None:
    out = demo()
    summary = out.stdout.split("== What happened ==")[1]
    assert "went to the undeliverable mailbox" not in summary
    assert "nothing was lost: the message is kept in the quarantine" in summary
    assert "then resubmit" in summary


def test_keep_leaves_the_quarantined_message_with_its_reason() -> None:
    out = demo("--keep")
    assert out.returncode == 0, out.stdout + out.stderr
    folder = sandbox_folder(out.stdout)
    try:
        assert f"The sandbox folder is kept: {folder}" in out.stdout
        [record] = Quarantine(folder / "state" / "quarantine").records()
        assert record.subject == KB_SUBJECT and record.account == "erin"
        assert f"{UNDELIVERABLE} refused it too" in record.reason and "Add contoso.eu" in record.fix
        eml = (folder / "state" / "quarantine" / f"{record.id}.eml").read_bytes()
        assert b"Subject: Welcome to Contoso Europe" in eml  # the whole message, nothing lost
        assert not (folder / "exchange" / ERIN).exists() and not (folder / "exchange" / UNDELIVERABLE).exists()
        assert (folder / "config.toml").is_file() and (folder / "state" / "events.sqlite3").is_file()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_headless_demo_imports_no_qt() -> None:
    code = ("import sys, contextlib, io\n"
            "from pop3gui.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = main(['demo', '--headless', '--once'])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'shiboken6', 'qasync'})\n"
            "print(rc, ','.join(bad))\n")
    env = {k: v for k, v in os.environ.items() if k != "POP3GUI_HOME"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "0", out.stdout + out.stderr


# --- the sandbox with the real connector ------------------------------------------------


async def test_sandbox_cycle_quarantine_fix_resubmit_and_no_double_delivery(tmp_path: Path) -> None:
    before = keyring.core._keyring_backend
    async with Sandbox(tmp_path / "sandbox") as sb:
        events: list[Event] = []
        bus = EventBus()
        bus.subscribe(events.append)
        preflight = await run_preflight(sb.config)
        connector = sb.connector(bus)
        try:
            first = await connector.run_cycle()
            report = sb.report(events, preflight)
            assert report.as_designed, report.problems
            assert first.exit_code == 1  # a real run reports the refusal
            rcpts = [a.address.lower() for a in sb.exchange.rcpt_log]
            assert "partner@fabrikam.example" not in rcpts  # the foreign Cc never reached RCPT TO
            assert "bob@contoso.com" in rcpts and "carol@contoso.com" in rcpts
            assert [m.subject for m in sb.exchange.messages("dave@contoso.com")] == ["Board agenda (Bcc copy)"]
            assert sb.exchange.messages("bob@contoso.com")[0].data.startswith(b"Delivered-To: bob@contoso.com\r\n")
            eu = [a for a in sb.exchange.rcpt_log if a.address.endswith("@contoso.eu")]
            assert {a.address for a in eu} == {ERIN, UNDELIVERABLE}  # the preflight's probes and the run
            assert all(a.reply.startswith("550 5.7.1") for a in eu)
            [kept] = report.quarantined
            assert kept.subject == KB_SUBJECT and kept.recipients == [ERIN]
            assert all(not subjects for subjects in report.left_on_server.values())
            summary = report.summary()
            assert "Quarantined: 1" in summary and "kept in the quarantine" in summary
            assert "The demo ran as designed (exit 0)" in summary

            # The one-click fix: the policy covers contoso.eu, the Exchange accepts it.
            config = sb.fix_policy("contoso.eu")
            assert "contoso.eu" in config.local_domains()
            assert "contoso.eu" in sb.paths.config_file.read_text()
            assert "contoso.eu" in sb.exchange.accepted_domains
            connector.use_config(config)
            delivered = len(sb.exchange.messages())
            second = await connector.run_cycle()
            assert second.exit_code == 0
            assert len(sb.exchange.messages()) == delivered  # nothing delivered twice
            assert sum(a.downloaded for a in second.accounts) == 0

            # Resubmit from the quarantine: erin gets the message, the quarantine is empty.
            assert await connector.resubmit(kept.id) == "Delivered."
            assert [m.subject for m in sb.exchange.messages(ERIN)] == [KB_SUBJECT]
            assert list(Quarantine(sb.paths.quarantine_dir).records()) == []

            # New mail for erin now reaches her.
            sb.send_to_isp("erin", "After the fix")
            third = await connector.run_cycle()
            assert third.exit_code == 0
            assert [m.subject for m in sb.exchange.messages(ERIN)] == [KB_SUBJECT, "After the fix"]
            assert sb.pop3.messages("erin") == []
            assert (await run_preflight(sb.config)).ok
        finally:
            connector.close()
    assert keyring.core._keyring_backend is before  # the in-memory keyring was only borrowed


async def test_the_exchange_follows_a_saved_policy(tmp_path: Path) -> None:
    from dataclasses import replace

    async with Sandbox(tmp_path / "sandbox") as sb:
        assert sb.accept_policy_domains(sb.config) == []
        first = sb.config.policies[0]
        config = replace(sb.config, policies=(replace(first, domains=(*first.domains, "Contoso.EU")),))
        assert sb.accept_policy_domains(config) == ["contoso.eu"]
        assert sb.exchange.rcpt_reply(UNDELIVERABLE).startswith("250") and sb.config is config


# --- the demo's POP3 server ----------------------------------------------------------------


def pop(srv: DemoPop3Server) -> Pop3Client:
    return Pop3Client("127.0.0.1", srv.port, security="none", timeout=5)


async def test_pop3_dele_takes_effect_only_on_quit() -> None:
    srv = DemoPop3Server({"u": ("pw", [b"Subject: a\r\n\r\none\r\n", b"Subject: b\r\n\r\ntwo\r\n"])})
    await srv.start()
    try:
        client = pop(srv)
        await client.connect()
        await client.login("u", "pw")
        await client.dele(1)
        assert await client.list() == {2: len(srv.messages("u")[1])}  # hidden in the session
        await client.close()  # dropped without QUIT: nothing deleted
        assert len(srv.messages("u")) == 2

        async with pop(srv) as client:
            await client.login("u", "pw")
            await client.dele(1)
            await client.rset()
            await client.dele(2)
        assert srv.messages("u") == [b"Subject: a\r\n\r\none\r\n"]
        assert srv.sessions("u") == 2
    finally:
        await srv.stop()


async def test_pop3_dot_stuffing_round_trip_top_and_uidl() -> None:
    body = b"Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\nplain\r\n. space\r\n"
    srv = DemoPop3Server({"u": ("pw", [body, b"Subject: lf only\n\nline\n"])})
    await srv.start()
    try:
        async with pop(srv) as client:
            await client.login("u", "pw")
            assert {"UIDL", "TOP", "USER", "PIPELINING"} <= set(client.capabilities)
            assert await client.stat() == (2, len(body) + len(b"Subject: lf only\r\n\r\nline\r\n"))
            out = io.BytesIO()
            await client.retr_to(1, out)
            assert out.getvalue() == body
            assert await client.top(1, 2) == b"Subject: dots\r\n\r\n.\r\n..two\r\n"
            uids = await client.uidl()
            assert uids is not None and len(set(uids.values())) == 2
            await client.noop()
    finally:
        await srv.stop()


async def test_pop3_wrong_password_is_refused() -> None:
    srv = DemoPop3Server({"u": ("right", [b"Subject: a\r\n\r\nx\r\n"])})
    await srv.start()
    try:
        async with pop(srv) as client:
            with pytest.raises(Pop3AuthError):
                await client.login("u", "wrong")
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert (await reader.readline()).startswith(b"+OK")
        writer.write(b"USER u\r\nPASS wrong\r\nSTAT\r\nUSER nobody\r\nPASS right\r\nQUIT\r\n")
        replies = [await reader.readline() for _ in range(6)]
        assert [r[:4] for r in replies] == [b"+OK ", b"-ERR", b"-ERR", b"+OK ", b"-ERR", b"+OK "]
        writer.close()
        await writer.wait_closed()
        assert srv.sessions("u") == 0 and len(srv.messages("u")) == 1
    finally:
        await srv.stop()


async def test_pop3_one_session_per_mailbox() -> None:
    srv = DemoPop3Server({"u": ("pw", [])})
    await srv.start()
    try:
        async with pop(srv) as first:
            await first.login("u", "pw")
            async with pop(srv) as second:
                with pytest.raises(Pop3InUseError):
                    await second.login("u", "pw")
        async with pop(srv) as again:  # the lock ends with the session
            await again.login("u", "pw")
    finally:
        await srv.stop()


# --- the demo's Exchange ----------------------------------------------------------------------


async def test_exchange_refuses_relay_and_unknown_users(tmp_path: Path) -> None:
    ex = DemoExchange(tmp_path / "ex", ["contoso.com"], unknown=["ghost@contoso.com"])
    assert ex.rcpt_reply("Bob@Contoso.com").startswith("250")
    assert ex.rcpt_reply("erin@contoso.eu") == "550 5.7.1 Unable to relay for erin@contoso.eu"
    assert ex.rcpt_reply("ghost@contoso.com").startswith("550 5.1.1 User unknown")
    ex.accept_domain("Contoso.EU")
    assert ex.rcpt_reply("erin@contoso.eu").startswith("250")
