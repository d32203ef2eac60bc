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
from collections.abc import Iterator
from pathlib import Path

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import keyring
import keyring.core
import pytest

from pop3gui.core.errors import OAuthConsentMissing, MailboxAuthError, MailboxInUseError, MailboxTokenRefused
from pop3gui.core.events.model import Event, EventBus
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import SignInStore, sign_in_key
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.engine.preflight import run_preflight
from pop3gui.core.state.credentials import OAUTH_SERVICE, Credentials
from pop3gui.demo.exchange import DemoExchange
from pop3gui.demo.keyring_backend import MemoryKeyring
from pop3gui.demo.pop3_server import DemoPop3Server
from pop3gui.demo.sign_in import CLIENT_ID, DemoSignIn, s256
from pop3gui.core.state.spool import Quarantine
from pop3gui.demo.sandbox import Sandbox
from pop3gui.demo.story import DANA, DELIVERED, ERIN, KB_SUBJECT, OAUTH_SUBJECT, UNDELIVERABLE


def demo(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the demo with the real keyring unusable, to prove the demo does not need it."""
    env = {k: v for k, v in os.environ.items() if k != "POP3GUI_HOME"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.update(extra_env)
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


def test_headless_demo_signs_the_oauth_mailbox_in_before_the_cycle_and_delivers_its_mail() -> None:
    out = demo()
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    before_check = text.split("== pop3gui check")[0]
    assert ("Signing in dana@contoso.com at the demo sign-in page (a real provider would show its own page in "
            "your browser)") in before_check
    assert "Signed in account 'dana' as dana@contoso.com" in before_check
    assert "sandbox's in-memory keyring" in before_check
    assert re.search(r"^  demo sign-in page: +http://127\.0\.0\.1:\d+/authorize", text, re.M)
    assert "[ok] account 'dana': logged in" in text  # check, after the sign-in
    assert "[dana] Delivered to dana@contoso.com." in text
    summary = text.split("== What happened ==")[1]
    assert re.search(rf"^  dana@contoso.com +<- {OAUTH_SUBJECT}$", summary, re.M)
    oauth = summary.split("OAuth2 mailbox dana@contoso.com")[1].split("Maildirs of the Exchange")[0]
    assert "signed in at the demo sign-in page as dana@contoso.com" in oauth
    assert "the refresh token rotating each time" in oauth
    assert "with AUTH XOAUTH2" in oauth
    assert re.search(rf"delivered after sign-in:\n +dana@contoso.com +<- {OAUTH_SUBJECT}", oauth)


def test_a_proxy_in_the_environment_does_not_carry_the_demo_sign_in() -> None:
    dead = "http://127.0.0.1:9"  # nothing listens there: a request through this proxy fails
    out = demo(HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead, NO_PROXY="", no_proxy="")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Signed in account 'dana' as dana@contoso.com" in out.stdout
    assert "The demo ran as designed (exit 0)" in out.stdout


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
        await sb.sign_in()
        preflight = await run_preflight(sb.config, sign_ins=SignIns(Credentials(), sb.paths.sign_in_locks))
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


# --- the OAuth2 mailbox ----------------------------------------------------------------------


@pytest.fixture
def real_keyring() -> Iterator[MemoryKeyring]:
    """A stand-in for the OS keyring, installed as the process's keyring around the test."""
    before = keyring.core._keyring_backend
    stand_in = MemoryKeyring()
    keyring.set_keyring(stand_in)
    try:
        yield stand_in
    finally:
        keyring.core._keyring_backend = before


async def test_oauth_mailbox_delivers_after_the_sign_in_kept_in_the_sandbox_keyring(
        tmp_path: Path, real_keyring: MemoryKeyring) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        assert keyring.get_keyring() is sb.keyring
        record = await sb.sign_in()
        assert record.identity == DANA and record.refresh_token
        assert sb.sign_in_page.sign_ins == 1
        stored = SignInStore(Credentials()).load(sign_in_key("dana"))
        assert stored is not None and stored.refresh_token == record.refresh_token
        assert any(service == OAUTH_SERVICE for service, _ in sb.keyring._store)
        assert sb.sign_in_page.is_live_refresh_token(record.refresh_token)

        connector = sb.connector(EventBus())
        try:
            first = await connector.run_cycle()
            [dana] = [a for a in first.accounts if a.account == "dana"]
            assert not dana.failed and dana.errors == [] and dana.delivered == 1
            assert [m.subject for m in sb.exchange.messages(DANA)] == [OAUTH_SUBJECT]
            assert sb.pop3.messages(DANA) == []
            assert [(login.user, login.method) for login in sb.pop3.logins if login.user == DANA] == \
                [(DANA, "XOAUTH2")]
            # The connector holds no token of its own yet: it renewed one from the stored sign-in, which rotated.
            assert sb.sign_in_page.refreshes == 1
            rotated = SignInStore(Credentials()).load(sign_in_key("dana"))
            assert rotated is not None and rotated.refresh_token != record.refresh_token
            assert not sb.sign_in_page.is_live_refresh_token(record.refresh_token)

            # An hour later the access token has run out: the POP3 server refuses it, the connector renews it
            # (rotating the refresh token again) and delivers the new mail.
            sb.sign_in_page.expire_access_tokens()
            sb.send_to_isp("dana", "After the token expired")
            second = await connector.run_cycle()
            [dana] = [a for a in second.accounts if a.account == "dana"]
            assert not dana.failed and dana.errors == [] and dana.delivered == 1
            assert [m.subject for m in sb.exchange.messages(DANA)] == [OAUTH_SUBJECT, "After the token expired"]
            assert sb.sign_in_page.refreshes == 2
            again = SignInStore(Credentials()).load(sign_in_key("dana"))
            assert again is not None and again.refresh_token not in (record.refresh_token, rotated.refresh_token)
            assert not sb.sign_in_page.is_live_refresh_token(rotated.refresh_token)
            assert sb.sign_in_page.is_live_refresh_token(again.refresh_token)
            assert sb.sign_in_page.sign_ins == 1  # no second visit to the sign-in page
        finally:
            connector.close()
        story = sb.oauth_story()
        assert story.signed_in_as == DANA and story.refreshes == 2 and story.logins == ["XOAUTH2", "XOAUTH2"]
    assert keyring.get_keyring() is real_keyring
    assert real_keyring._store == {}  # nothing of the demo reached the real keyring


async def test_without_the_sign_in_the_oauth_mailbox_keeps_its_mail_and_the_report_says_so(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        events: list[Event] = []
        bus = EventBus()
        bus.subscribe(events.append)
        connector = sb.connector(bus)
        try:
            await connector.run_cycle()
        finally:
            connector.close()
        assert len(sb.pop3.messages(DANA)) == 1 and sb.exchange.messages(DANA) == []
        report = sb.report(events)
        assert f"{DANA} was not signed in at the demo sign-in page" in report.problems
        assert f"nothing was delivered to {DANA}" in report.problems
        assert "not signed in: its mail stays on the POP3 server" in report.summary()


async def test_denying_on_the_sign_in_page_signs_nobody_in(tmp_path: Path) -> None:
    async with Sandbox(tmp_path / "sandbox") as sb:
        async def press_deny(url: str) -> None:
            async with httpx.AsyncClient() as browser:
                page = await browser.get(url)
                assert "Sign in to the Contoso demo as dana@contoso.com" in page.text
                field = re.search(r'name="page" value="([^"]+)"', page.text)
                assert field
                pressed = await browser.post(sb.sign_in_page.authorize_url,
                                             data={"page": field.group(1), "decision": "deny"})
                assert pressed.status_code == 302
                await browser.get(pressed.headers["Location"])

        account = sb.config.account("dana")
        with pytest.raises(OAuthConsentMissing):
            await SignIns(Credentials(), sb.paths.sign_in_locks).sign_in(
                sign_in_key("dana"), sb.config.oauth_provider(account.oauth_provider), open_page=press_deny)
        assert sb.sign_in_page.sign_ins == 0
        assert SignInStore(Credentials()).load(sign_in_key("dana")) is None


# --- the demo's sign-in server -------------------------------------------------------------


def authorize(idp: DemoSignIn, verifier: str, *, redirect_uri: str = "http://127.0.0.1:9/") -> str:
    """Open the page, press Allow; the code sent back to *redirect_uri*."""
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "state": "s1",
             "scope": "pop offline_access", "code_challenge": s256(verifier), "code_challenge_method": "S256"}
    with httpx.Client(base_url=idp.base_url) as browser:
        page = browser.get("/authorize?" + urlencode(query))
        assert page.status_code == 200 and "Sign in to the Contoso demo as dana@contoso.com" in page.text
        field = re.search(r'name="page" value="([^"]+)"', page.text)
        assert field
        pressed = browser.post("/authorize", data={"page": field.group(1), "decision": "allow"})
    assert pressed.status_code == 302
    location = urlsplit(pressed.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    params = parse_qs(location.query)
    assert params["state"] == ["s1"]
    return params["code"][0]


def test_sign_in_server_checks_pkce_uses_codes_once_and_rotates_refresh_tokens() -> None:
    idp = DemoSignIn()
    idp.start()
    try:
        verifier = "v" * 50
        form = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/"}
        with httpx.Client(base_url=idp.base_url) as http:
            wrong = http.post("/token", data={**form, "code": authorize(idp, verifier), "code_verifier": "w" * 50})
            assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
            assert "PKCE" in wrong.json()["error_description"]
            missing = http.post("/token", data={**form, "code": authorize(idp, verifier)})
            assert missing.json()["error"] == "invalid_grant"

            code = authorize(idp, verifier)
            tokens = http.post("/token", data={**form, "code": code, "code_verifier": verifier}).json()
            assert idp.is_valid(tokens["access_token"]) == DANA and tokens["expires_in"] == 3600
            reused = http.post("/token", data={**form, "code": code, "code_verifier": verifier})
            assert reused.json()["error"] == "invalid_grant"  # a code works once

            refresh = {"grant_type": "refresh_token", "client_id": CLIENT_ID}
            renewed = http.post("/token", data={**refresh, "refresh_token": tokens["refresh_token"]}).json()
            assert renewed["refresh_token"] != tokens["refresh_token"]
            assert idp.is_valid(renewed["access_token"]) == DANA
            spent = http.post("/token", data={**refresh, "refresh_token": tokens["refresh_token"]})
            assert spent.json()["error"] == "invalid_grant"  # rotated: the old one is retired
            assert (idp.sign_ins, idp.refreshes) == (1, 1)

            idp.expire_access_tokens()
            assert idp.is_valid(renewed["access_token"]) is None
            assert idp.is_valid("made-up") is None
            unknown_app = http.post("/token", data={**refresh, "client_id": "other",
                                                    "refresh_token": renewed["refresh_token"]})
            assert unknown_app.status_code == 401 and unknown_app.json()["error"] == "invalid_client"
            # A sign-in page never redirects to an address that is not the app's loopback listener.
            page = http.get("/authorize?" + urlencode({"response_type": "code", "client_id": CLIENT_ID,
                                                      "redirect_uri": "https://evil.example/", "state": "s",
                                                      "code_challenge": s256(verifier),
                                                      "code_challenge_method": "S256"}))
            assert page.status_code == 400 and "Location" not in page.headers
            plain = http.get("/authorize?" + urlencode({"response_type": "code", "client_id": CLIENT_ID,
                                                       "redirect_uri": "http://127.0.0.1:9/", "state": "s"}))
            assert plain.status_code == 302 and "error=invalid_request" in plain.headers["Location"]
    finally:
        idp.stop()


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
            with pytest.raises(MailboxAuthError):
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
                with pytest.raises(MailboxInUseError):
                    await second.login("u", "pw")
        async with pop(srv) as again:  # the lock ends with the session
            await again.login("u", "pw")
    finally:
        await srv.stop()


def oauth_server() -> DemoPop3Server:
    srv = DemoPop3Server({"u": ("pw", [])}, token_check={"good-token": DANA, "other-token": "eve@contoso.com"}.get)
    srv.add_mailbox(DANA, "", [b"Subject: a\r\n\r\nx\r\n"], oauth=True)
    return srv


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_pop3_oauth_mailbox_logs_in_with_xoauth2_both_forms_and_oauthbearer() -> None:
    srv = oauth_server()
    await srv.start()
    try:
        async with pop(srv) as client:  # the client's two-line form
            assert {"XOAUTH2", "OAUTHBEARER"} <= set(client.capabilities["SASL"])
            await client.login_oauth(DANA, "good-token", mechanism="xoauth2")
            assert await client.stat() == (1, len(srv.messages(DANA)[0]))
        async with pop(srv) as client:
            await client.login_oauth(DANA, "good-token", mechanism="oauthbearer")
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert (await reader.readline()).startswith(b"+OK")
        one_line = b64(f"user={DANA}\x01auth=Bearer good-token\x01\x01")
        writer.write(f"AUTH XOAUTH2 {one_line}\r\nSTAT\r\nQUIT\r\n".encode())
        replies = [await reader.readline() for _ in range(3)]
        assert [r[:3] for r in replies] == [b"+OK", b"+OK", b"+OK"], replies
        writer.close()
        await writer.wait_closed()
        assert [(login.user, login.method) for login in srv.logins] == \
            [(DANA, "XOAUTH2"), (DANA, "OAUTHBEARER"), (DANA, "XOAUTH2")]
    finally:
        await srv.stop()


async def test_pop3_refuses_a_wrong_token_with_the_json_continuation_then_err() -> None:
    srv = oauth_server()
    await srv.start()
    try:
        async with pop(srv) as client:
            with pytest.raises(MailboxTokenRefused) as refused:
                await client.login_oauth(DANA, "wrong-token", mechanism="xoauth2")
            assert (refused.value.status, refused.value.scope) == ("401", "pop")
            assert refused.value.reply == "-ERR [AUTH] Authentication failed."
            await client.login_oauth(DANA, "good-token")  # the same session may try again
        async with pop(srv) as client:
            with pytest.raises(MailboxTokenRefused) as refused:
                await client.login_oauth(DANA, "other-token", mechanism="oauthbearer")  # another user's token
            assert refused.value.status == "invalid_token"

        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert (await reader.readline()).startswith(b"+OK")
        writer.write(b"AUTH XOAUTH2\r\n")
        assert await reader.readline() == b"+ \r\n"
        writer.write(b64(f"user={DANA}\x01auth=Bearer wrong-token\x01\x01").encode() + b"\r\n")
        challenge = await reader.readline()
        assert challenge.startswith(b"+ ")
        assert json.loads(base64.b64decode(challenge[2:].strip())) == \
            {"status": "401", "schemes": "bearer", "scope": "pop"}
        writer.write(b"\r\n")
        assert await reader.readline() == b"-ERR [AUTH] Authentication failed.\r\n"
        writer.write(f"USER {DANA}\r\nPASS \r\nPASS x\r\nAUTH PLAIN\r\nSTAT\r\nQUIT\r\n".encode())
        replies = [await reader.readline() for _ in range(6)]
        assert [r[:4] for r in replies] == [b"+OK ", b"-ERR", b"-ERR", b"-ERR", b"-ERR", b"+OK "], replies
        assert b"OAuth2 only" in replies[1]  # no password, not even an empty one, opens an OAuth2 mailbox
        writer.close()
        await writer.wait_closed()
        assert srv.sessions(DANA) == 1 and len(srv.messages(DANA)) == 1
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
