"""The SMTP submitter on its own: the real Postfix for what a server does, aiosmtpd for its faults.

The engine's tests (tests/core/engine/test_mailbox.py) show what the connector
makes of a 421 greeting, a dropped DATA or a session closed between messages;
these tests hold the submitter to what it reports: each recipient's reply,
the DATA reply, the transcript, and the error for each way a session fails.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from pop3gui.core.errors import (
    ConfigError,
    OAuthError,
    SmtpAuthError,
    SmtpConnectionError,
    SmtpTimeoutError,
    SmtpTokenRefused,
)
from pop3gui.core.smtp.data import BLOCK, MessageSource
from pop3gui.core.smtp.submit import SmtpSubmitter, Submission
from pop3gui.core.tls import client_context
from tests.servers import certs as test_certs
from tests.servers.postfix import PostfixServer
from tests.support.office import make_message
from tests.support.requirements import in_ci
from tests.support.smtp_sink import SmtpSink, unused_port

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
GHOST = "ghost@contoso.com"  # the office's Postfix has no mailbox for it
FOREIGN = "erin@fabrikam.com"  # a domain the office's Postfix does not accept
SENDER = "sender@fabrikam.example"
# Short enough that a test waiting for a server that says nothing ends soon; no test measures it.
SILENT_SERVER_TIMEOUT = 1.0


def _plain(host: str, port: int, **kw: Any) -> SmtpSubmitter:
    return SmtpSubmitter(host, port, security="none", timeout=kw.pop("timeout", 20.0), **kw)


def _codes(sub: Submission) -> dict[str, int]:
    return {r.address: r.code for r in sub.replies}


# -- a scripted aiosmtpd with TLS and stalls -------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> test_certs.TestCertificates:
    """A private CA and a certificate for localhost and 127.0.0.1 (made with openssl)."""
    if shutil.which("openssl") is None:
        problem = "openssl is not installed (apt-get install -y openssl)"
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)
    return test_certs.make_certificates(tmp_path_factory.mktemp("smtp-tls"))


class _Handler:
    def __init__(self, server: ScriptedSmtp) -> None:
        self.server = server

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.server.ehlo_names.append(hostname)
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.server.stall_at == "RCPT":
            await asyncio.Event().wait()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.stall_at == "DATA":
            await asyncio.Event().wait()
        self.server.received.append(envelope.original_content or b"")
        return "250 2.0.0 Ok: queued"


class ScriptedSmtp:
    """aiosmtpd on 127.0.0.1: STARTTLS offered (``starttls``), TLS from the first byte
    (``implicit``), or plain; ``stall_at`` ("RCPT" or "DATA") never answers that command."""

    def __init__(self, *, starttls: ssl.SSLContext | None = None, implicit: ssl.SSLContext | None = None,
                 stall_at: str = "") -> None:
        self.starttls = starttls
        self.implicit = implicit
        self.stall_at = stall_at
        self.ehlo_names: list[str] = []
        self.received: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []

    def _factory(self) -> SMTP:
        session = SMTP(_Handler(self), hostname="scripted.test", tls_context=self.starttls,
                       require_starttls=False, loop=asyncio.get_running_loop())
        self._sessions.append(session)
        return session

    async def __aenter__(self) -> Self:
        self._server = await asyncio.get_running_loop().create_server(self._factory, "127.0.0.1", 0,
                                                                       ssl=self.implicit)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Stop listening, drop every session (the TLS layer and the socket under it) and end its
        handler, so no socket or task outlives the test."""
        assert self._server is not None
        self._server.close()
        for session in self._sessions:
            for transport in (session.transport, session._original_transport):
                if transport is not None:
                    transport.abort()
        for session in self._sessions:
            # A handler can wait for a handshake that an abort ends without a word: end it here.
            if session._handler_coroutine is not None:
                session._handler_coroutine.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await session._handler_coroutine
        await self._server.wait_closed()


def server_context(certs: test_certs.TestCertificates) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs.cert_path), str(certs.key_path))
    return ctx


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word (a firewall that swallows the session)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


# -- what a real server says, recipient by recipient (Postfix) ---------------------------------


@pytest.mark.servers
async def test_accepted_and_refused_recipients_are_reported_one_by_one(postfix_clean: PostfixServer) -> None:
    message = make_message(to=ALICE, subject="three recipients")
    async with _plain(postfix_clean.host, postfix_clean.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, GHOST, FOREIGN], message)

    assert sub.message_accepted and sub.data_code == 250
    assert sub.accepted == (ALICE,)
    assert _codes(sub) == {ALICE: 250, GHOST: 550, FOREIGN: 554}
    assert [(r.address, r.permanent) for r in sub.refused] == [(GHOST, True), (FOREIGN, True)]
    assert "Relay access denied" in dict((r.address, r.message) for r in sub.refused)[FOREIGN]
    assert sub.deferred == ()
    [copy] = postfix_clean.wait_for_delivered(1)
    assert copy["Delivered-To"] == ALICE and copy["Subject"] == "three recipients"


@pytest.mark.servers
async def test_the_transcript_shows_the_whole_session_in_order(postfix_clean: PostfixServer) -> None:
    message = make_message(to=ALICE)
    async with _plain(postfix_clean.host, postfix_clean.port, local_hostname="connector.test") as smtp:
        sub = await smtp.submit(SENDER, [ALICE, FOREIGN], message)

    lines = sub.transcript.splitlines()
    assert lines[0].startswith("<S>: 220 ") and "ESMTP" in lines[0]
    assert [line for line in lines if line.startswith("<C>: ")] == [
        "<C>: EHLO connector.test", f"<C>: MAIL FROM:<{SENDER}> SIZE={len(message)}", f"<C>: RCPT TO:<{ALICE}>",
        f"<C>: RCPT TO:<{FOREIGN}>", "<C>: DATA", f"<C>: <{len(message)} bytes of message>",
    ]
    assert any(line.startswith("<S>: 250-") for line in lines)  # EHLO's many lines, continuation marked
    assert any(line.startswith("<S>: 554 5.7.1") for line in lines)
    assert lines[-1].startswith("<S>: 250 ")


@pytest.mark.servers
async def test_8bit_text_is_announced_and_arrives_as_it_was(postfix_clean: PostfixServer) -> None:
    body = "Caf\u00e9 cr\u00e8me, na\u00efve \u2603\r\n"
    message = make_message(to=ALICE, subject="eight bit", body=body).replace(
        b"Subject:", b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nSubject:")
    async with _plain(postfix_clean.host, postfix_clean.port) as smtp:
        eight = await smtp.submit(SENDER, [ALICE], message)
        seven = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE, subject="ascii"))

    assert f"<C>: MAIL FROM:<{SENDER}> BODY=8BITMIME" in eight.transcript
    assert "BODY=8BITMIME" not in seven.transcript
    copies = {str(m["Subject"]): m for m in postfix_clean.wait_for_delivered(2)}
    assert copies["eight bit"].get_content() == body.replace("\r\n", "\n")


@pytest.mark.servers
async def test_dots_and_bare_line_ends_survive_the_trip(postfix_clean: PostfixServer) -> None:
    body = ".\r\n..two dots\r\n.\r\nlf only\nend without a line break"
    async with _plain(postfix_clean.host, postfix_clean.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE, subject="dots", body=body))

    assert sub.message_accepted
    [copy] = postfix_clean.wait_for_delivered(1)
    assert copy.get_content() == ".\n..two dots\n.\nlf only\nend without a line break\n"


@pytest.mark.servers
async def test_takes_postmaster_tells_an_accepted_domain_from_one_the_server_refuses(
        postfix_clean: PostfixServer) -> None:
    async with _plain(postfix_clean.host, postfix_clean.port) as smtp:
        assert await smtp.takes_postmaster("contoso.com") is True
        assert await smtp.takes_postmaster("CONTOSO.local") is True
        assert await smtp.takes_postmaster("fabrikam.com") is False
        # The session is still good for mail afterwards.
        sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))

    assert sub.accepted == (ALICE,)
    assert len(postfix_clean.wait_for_delivered(1)) == 1


@pytest.mark.servers
async def test_a_probe_learns_the_replies_and_sends_nothing(postfix_clean: PostfixServer) -> None:
    async with _plain(postfix_clean.host, postfix_clean.port) as smtp:
        probe = await smtp.probe("", [ALICE, GHOST, FOREIGN])

    assert _codes(probe) == {ALICE: 250, GHOST: 550, FOREIGN: 554}
    assert probe.data_code == 0 and probe.accepted == ()
    assert "<C>: MAIL FROM:<>" in probe.transcript
    assert "<C>: DATA" not in probe.transcript and probe.transcript.splitlines()[-2] == "<C>: RSET"
    assert postfix_clean.queued() == 0 and postfix_clean.delivered() == []


# -- replies a server may give (aiosmtpd, scripted) ---------------------------------------------


async def test_a_deferred_recipient_is_to_be_retried_and_the_others_get_the_message(sink: SmtpSink) -> None:
    sink.rcpt = {BOB: "452 4.2.2 Mailbox full, try later"}
    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, BOB], make_message(to=ALICE))

    assert sub.accepted == (ALICE,)
    assert [(r.address, r.code, r.permanent) for r in sub.deferred] == [(BOB, 452, False)]
    assert sub.refused == ()
    assert sink.copies_for(ALICE) == 1 and sink.copies_for(BOB) == 0


async def test_a_permanent_refusal_at_data_refuses_every_accepted_recipient(sink: SmtpSink) -> None:
    sink.rcpt = {CAROL: "550 5.1.1 User unknown"}
    sink.data = "554 5.6.0 Message rejected by content filter"
    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, BOB, CAROL], make_message(to=ALICE))

    assert not sub.message_accepted and sub.accepted == ()
    assert {(r.address, r.code) for r in sub.refused} == {(ALICE, 554), (BOB, 554), (CAROL, 550)}
    assert all("content filter" in r.message for r in sub.refused if r.code == 554)
    assert sub.deferred == ()
    assert sink.received == []


async def test_a_temporary_refusal_at_data_defers_every_accepted_recipient(sink: SmtpSink) -> None:
    sink.rcpt = {CAROL: "550 5.1.1 User unknown"}
    sink.data = "451 4.3.0 Queue file write error"
    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, BOB, CAROL], make_message(to=ALICE))
        # The refused message left the session clean: the next one goes through it.
        sink.data = None
        again = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))

    assert sub.accepted == ()
    assert {(r.address, r.code) for r in sub.deferred} == {(ALICE, 451), (BOB, 451)}
    assert [(r.address, r.code) for r in sub.refused] == [(CAROL, 550)]
    assert again.accepted == (ALICE,) and sink.connections == 1 and sink.copies_for(ALICE) == 1


async def test_a_refused_sender_refuses_every_recipient_and_keeps_the_session(sink: SmtpSink) -> None:
    sink.mail = {SENDER: "553 5.7.1 Sender address rejected: not owned by user"}
    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, BOB], make_message(to=ALICE))
        other = await smtp.submit("other@fabrikam.example", [ALICE], make_message(to=ALICE))

    assert sub.data_code == 553 and not sub.message_accepted
    assert {(r.address, r.code) for r in sub.refused} == {(ALICE, 553), (BOB, 553)}
    assert "<C>: RCPT TO" not in sub.transcript and "<C>: RSET" in sub.transcript
    assert other.accepted == (ALICE,) and sink.connections == 1
    assert [r.mail_from for r in sink.received] == ["other@fabrikam.example"]


async def test_no_data_is_sent_when_every_recipient_is_refused(sink: SmtpSink) -> None:
    sink.rcpt = {ALICE: "550 5.1.1 User unknown", BOB: "451 4.3.0 Try later"}
    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE, BOB], make_message(to=ALICE))

    assert "<C>: DATA" not in sub.transcript and sub.transcript.splitlines()[-2] == "<C>: RSET"
    assert [r.address for r in sub.refused] == [ALICE] and [r.address for r in sub.deferred] == [BOB]
    assert sink.received == []


async def test_one_session_carries_many_messages(sink: SmtpSink) -> None:
    async with _plain("127.0.0.1", sink.port) as smtp:
        for n in range(3):
            await smtp.submit(SENDER, [ALICE], make_message(to=ALICE, subject=f"m{n}"))
    assert sink.connections == 1 and sink.copies_for(ALICE) == 3


async def test_a_message_of_many_blocks_is_streamed_from_its_file_intact(sink: SmtpSink, tmp_path: Path) -> None:
    line = b"0123456789" * 7 + b"\r\n"
    body = line * (3 * BLOCK // len(line) + 7) + b".leading dot\r\n"
    spooled = tmp_path / "big.eml"
    spooled.write_bytes(make_message(to=ALICE, subject="big") + body)
    trace = b"Received: by pop3gui; Mon, 1 Jan 2024 10:00:00 +0000\r\n"

    async with _plain("127.0.0.1", sink.port) as smtp:
        sub = await smtp.submit(SENDER, [ALICE], MessageSource.from_file(spooled, prefix=trace))

    assert sub.accepted == (ALICE,)
    [received] = sink.received
    assert received.content == trace + spooled.read_bytes()
    assert f"<{len(trace) + spooled.stat().st_size} bytes of message>" in sub.transcript


async def test_takes_postmaster_is_unsure_when_the_null_sender_is_refused(sink: SmtpSink) -> None:
    sink.mail = {"": "550 5.7.1 Null sender not allowed here"}
    async with _plain("127.0.0.1", sink.port) as smtp:
        assert await smtp.takes_postmaster("contoso.com") is None


async def test_takes_postmaster_is_unsure_on_a_temporary_reply(sink: SmtpSink) -> None:
    sink.rcpt = {"postmaster@contoso.com": "451 4.3.0 Try again later"}
    async with _plain("127.0.0.1", sink.port) as smtp:
        assert await smtp.takes_postmaster("contoso.com") is None
    assert sink.received == []


async def test_the_ehlo_name_is_the_one_asked_for() -> None:
    async with ScriptedSmtp() as server:
        async with _plain("127.0.0.1", server.port, local_hostname="connector.contoso.local") as smtp:
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
    assert server.ehlo_names == ["connector.contoso.local"]
    assert "<C>: EHLO connector.contoso.local" in sub.transcript


async def test_without_an_ehlo_name_this_host_s_name_is_looked_up_once_for_all_sessions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A reverse DNS lookup per connection can take seconds on an office network; it is made once."""
    import socket

    from pop3gui.core.smtp import submit

    lookups: list[str] = []

    def getfqdn(name: str = "") -> str:
        lookups.append(name)
        return "pc1.contoso.local"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    submit._host_name.cache_clear()
    try:
        async with ScriptedSmtp() as server:
            for _ in range(2):  # sessions made at once, then more later
                sessions = [_plain("127.0.0.1", server.port) for _ in range(3)]
                await asyncio.gather(*(s.connect() for s in sessions))
                await asyncio.gather(*(s.close() for s in sessions))
    finally:
        submit._host_name.cache_clear()  # later tests look up the real name
    assert server.ehlo_names == ["pc1.contoso.local"] * 6
    assert lookups == [""]


# -- logging in ---------------------------------------------------------------------------------


async def test_the_password_never_reaches_the_transcript() -> None:
    password = "s3cret-Pa55word"
    async with SmtpSink(login=("connector", password)) as sink:
        async with _plain("127.0.0.1", sink.port, username="connector", password=password) as smtp:
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))

    assert sub.accepted == (ALICE,)
    assert "<C>: AUTH **** (redacted)" in sub.transcript
    assert any(line.startswith("<S>: 235") for line in sub.transcript.splitlines())
    for secret in (password, base64.b64encode(password.encode()).decode(),
                   base64.b64encode(b"\0connector\0" + password.encode()).decode()):
        assert secret not in sub.transcript


async def test_a_refused_login_is_an_auth_error_with_its_cause_and_fix() -> None:
    password = "wrong-Pa55word"
    async with SmtpSink(login=("connector", "right-password")) as sink:
        smtp = _plain("127.0.0.1", sink.port, username="connector", password=password)
        with pytest.raises(SmtpAuthError) as caught:
            await smtp.connect()
        await smtp.close()

    exc = caught.value
    assert isinstance(exc, PermissionError) and exc.temporary is False
    assert exc.code == 535
    assert f"127.0.0.1:{sink.port}" in str(exc) and "connector" in str(exc)
    assert "535" in exc.cause and "pop3gui secret set --smtp" in exc.fix
    assert "<C>: AUTH **** (redacted)" in exc.transcript and password not in exc.transcript
    assert sink.received == []


# -- sessions that fail -------------------------------------------------------------------------


async def test_nothing_listening_is_a_connection_error_saying_what_to_check() -> None:
    port = unused_port()
    with pytest.raises(SmtpConnectionError) as caught:
        async with _plain("127.0.0.1", port):
            pass
    exc = caught.value
    assert isinstance(exc, ConnectionError) and exc.temporary
    assert f"127.0.0.1:{port}" in str(exc)
    assert "not running" in exc.cause and "[smtp]" in exc.fix


async def test_a_421_greeting_is_a_connection_error_with_the_servers_reply() -> None:
    async with SmtpSink(greeting_421=True) as sink:
        with pytest.raises(SmtpConnectionError) as caught:
            async with _plain("127.0.0.1", sink.port):
                pass
    assert caught.value.code == 421 and "Service not available" in caught.value.reply
    assert "<S>: 421 " in caught.value.transcript


async def test_a_server_that_never_greets_is_a_timeout() -> None:
    async with _silent_server() as port:
        with pytest.raises(SmtpTimeoutError) as caught:
            async with _plain("127.0.0.1", port, timeout=SILENT_SERVER_TIMEOUT):
                pass
    exc = caught.value
    assert isinstance(exc, TimeoutError)
    assert f"127.0.0.1:{port} did not answer in {SILENT_SERVER_TIMEOUT:g} s" in str(exc)
    assert exc.cause and exc.fix


@pytest.mark.parametrize(("stall_at", "last_sent", "maybe_delivered"), [
    ("RCPT", f"<C>: RCPT TO:<{ALICE}>", False),
    ("DATA", "<C>: DATA", True),
])
async def test_a_server_that_stops_answering_is_a_timeout_that_says_if_it_may_have_the_message(
        stall_at: str, last_sent: str, maybe_delivered: bool) -> None:
    async with ScriptedSmtp(stall_at=stall_at) as server:
        smtp = _plain("127.0.0.1", server.port, timeout=SILENT_SERVER_TIMEOUT)
        await smtp.connect()
        with pytest.raises(SmtpTimeoutError) as caught:
            await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
        await smtp.close()
    exc = caught.value
    assert f"127.0.0.1:{server.port} stopped answering" in str(exc)
    assert exc.maybe_delivered is maybe_delivered
    assert exc.transcript.splitlines()[-1] == last_sent


# -- TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_to_a_server_whose_ca_is_trusted(certs: test_certs.TestCertificates, security: str) -> None:
    ctx = server_context(certs)
    kw: dict[str, Any] = {"starttls": ctx} if security == "starttls" else {"implicit": ctx}
    async with ScriptedSmtp(**kw) as server:
        async with SmtpSubmitter("127.0.0.1", server.port, security=security, timeout=20,
                                 ssl_context=client_context(ca_file=str(certs.ca_path))) as smtp:
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE, subject="over tls"))

    assert sub.accepted == (ALICE,) and len(server.received) == 1
    assert ("<C>: STARTTLS" in sub.transcript) is (security == "starttls")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_to_a_server_no_trusted_authority_vouches_for_is_refused(
        certs: test_certs.TestCertificates, security: str) -> None:
    ctx = server_context(certs)
    kw: dict[str, Any] = {"starttls": ctx} if security == "starttls" else {"implicit": ctx}
    async with ScriptedSmtp(**kw) as server:
        with pytest.raises(SmtpConnectionError) as caught:
            async with SmtpSubmitter("127.0.0.1", server.port, security=security, timeout=20):
                pass
        assert server.received == []
    assert "certificate verify failed" in str(caught.value)


async def test_starttls_asked_for_but_not_offered_fails_before_the_password_is_sent() -> None:
    async with SmtpSink(login=("connector", "pw")) as sink:
        with pytest.raises(SmtpConnectionError) as caught:
            async with SmtpSubmitter("127.0.0.1", sink.port, security="starttls", username="connector",
                                     password="pw", timeout=20):
                pass
    assert "<C>: STARTTLS" in caught.value.transcript
    assert "<C>: AUTH" not in caught.value.transcript


def test_where_names_host_and_port() -> None:
    assert SmtpSubmitter("mail.contoso.local", 587).where == "mail.contoso.local:587"



# -- logging in with an OAuth2 access token (AUTH XOAUTH2) ----------------------------------------

TOKEN = "EwBwA8l6BAAU" + "t" * 1488  # as long as Microsoft's access tokens


class _XoauthSession(SMTP):
    """aiosmtpd taking lines as long as RFC 4954 allows AUTH (12288 octets) unless told ``short_lines``,
    in which case a one-line AUTH XOAUTH2 with a long token meets aiosmtpd's stock 500."""

    line_length_limit = 16384

    def __init__(self, *args: Any, short_lines: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if not short_lines:
            self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit, AUTH=12288)
        else:
            self.line_length_limit = SMTP.line_length_limit


class _XoauthHandler(_Handler):
    """AUTH XOAUTH2 as Gmail and Exchange Online answer it."""

    def __init__(self, server: XoauthSmtp) -> None:
        super().__init__(server)
        self.xoauth = server

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        conf = self.xoauth
        record: dict[str, str] = {"form": "initial" if len(args) == 2 else "continued"}
        if len(args) == 2:
            blob: bytes | object = base64.b64decode(args[1], validate=True)
        else:
            blob = await server.challenge_auth("")
        if not isinstance(blob, bytes):
            return AuthResult(success=False, handled=True)
        fields = dict(f.partition("=")[::2] for f in blob.decode().split("\x01") if f)
        record.update(user=fields.get("user", ""), token=fields.get("auth", "").removeprefix("Bearer "))
        conf.logins.append(record)
        if (record["user"], record["token"]) == (conf.user, conf.token):
            return AuthResult(success=True, auth_data=record["user"])
        if conf.challenge is not None:
            answer = await server.challenge_auth(conf.challenge)
            record["answer"] = answer.decode() if isinstance(answer, bytes) else "(none)"
        return AuthResult(success=False, handled=False, message=conf.refusal)


class XoauthSmtp(ScriptedSmtp):
    """aiosmtpd with AUTH XOAUTH2 for one ``user`` and ``token``.

    A refused token gets ``challenge`` (JSON, sent base64 after 334, as Gmail does; None: none, as
    Exchange Online) and then ``refusal``; ``offer=False`` leaves XOAUTH2 out (504 to AUTH XOAUTH2).
    ``logins`` records each response taken apart: ``form``, ``user``, ``token``, ``answer``.
    """

    def __init__(self, *, user: str = "connector@contoso.com", token: str = TOKEN, short_lines: bool = False,
                 challenge: str | None = '{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}',
                 refusal: str = "535 5.7.8 Username and Password not accepted.", offer: bool = True) -> None:
        super().__init__()
        self.user = user
        self.token = token
        self.short_lines = short_lines
        self.challenge = challenge
        self.refusal = refusal
        self.offer = offer
        self.logins: list[dict[str, str]] = []

    def _factory(self) -> SMTP:
        session = _XoauthSession(_XoauthHandler(self), hostname="xoauth.test", auth_require_tls=False,
                                 auth_exclude_mechanism=[] if self.offer else ["XOAUTH2"],
                                 short_lines=self.short_lines, loop=asyncio.get_running_loop())
        self._sessions.append(session)
        return session


def _xoauth(server: XoauthSmtp, token: str = TOKEN, **kw: Any) -> SmtpSubmitter:
    return _plain("127.0.0.1", server.port, username=server.user, oauth_token=token, **kw)


def _assert_redacted(transcript: str, token: str) -> None:
    response = base64.b64encode(f"user=connector@contoso.com\x01auth=Bearer {token}\x01\x01".encode()).decode()
    for secret in (token, token[:100], response, response[:100]):
        assert secret not in transcript


async def test_xoauth2_logs_in_with_the_one_line_form_and_the_message_goes_through() -> None:
    async with XoauthSmtp() as server:
        async with _xoauth(server) as smtp:
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
    assert sub.accepted == (ALICE,) and len(server.received) == 1
    assert server.logins == [{"form": "initial", "user": "connector@contoso.com", "token": TOKEN}]
    lines = sub.transcript.splitlines()
    at = lines.index("<C>: AUTH XOAUTH2 **** (redacted)")
    assert lines[at + 1].startswith("<S>: 235")
    _assert_redacted(sub.transcript, TOKEN)


async def test_a_long_token_falls_back_to_the_two_line_form() -> None:
    """aiosmtpd's stock limits refuse a 2000-octet AUTH line with 500: the token goes after its 334."""
    async with XoauthSmtp(short_lines=True) as server:
        async with _xoauth(server) as smtp:
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
    assert sub.accepted == (ALICE,)
    assert server.logins == [{"form": "continued", "user": "connector@contoso.com", "token": TOKEN}]
    lines = sub.transcript.splitlines()
    at = lines.index("<C>: AUTH XOAUTH2 **** (redacted)")
    assert lines[at + 1] == "<S>: 500 Command line too long"
    assert lines[at + 2:at + 6] == ["<C>: AUTH XOAUTH2", "<S>: 334 ", "<C>: **** (redacted)",
                                    "<S>: 235 2.7.0 Authentication successful"]
    _assert_redacted(sub.transcript, TOKEN)


async def test_a_refused_token_gets_its_json_challenge_answered_and_raises_token_refused() -> None:
    async with XoauthSmtp() as server:
        smtp = _xoauth(server, token="expired-" + TOKEN[8:])
        with pytest.raises(SmtpTokenRefused) as caught:
            await smtp.connect()
        await smtp.close()
    assert server.logins[0]["answer"] == ""  # the empty line that ends the exchange
    exc = caught.value
    assert isinstance(exc, SmtpAuthError) and isinstance(exc, PermissionError) and not exc.temporary
    assert exc.code == 535 and exc.reply == "5.7.8 Username and Password not accepted."
    assert f"127.0.0.1:{server.port}" in str(exc) and "connector@contoso.com" in str(exc)
    assert "expired" in exc.cause and "status 400" in exc.cause and "scope https://mail.google.com/" in exc.cause
    assert "Sign in again" in exc.fix and "SMTP.Send" in exc.fix
    lines = exc.transcript.splitlines()
    at = lines.index("<C>: AUTH XOAUTH2 **** (redacted)")
    assert lines[at + 1].startswith("<S>: 334 ")
    assert lines[at + 2].startswith('-- the server\'s error: {"status":"400"')
    assert lines[at + 3:at + 5] == ["<C>: ", "<S>: 535 5.7.8 Username and Password not accepted."]
    _assert_redacted(exc.transcript, "expired-" + TOKEN[8:])
    assert server.received == []


async def test_a_refusal_without_challenge_is_token_refused_too() -> None:
    """Exchange Online answers a bad token with its 535 straight away."""
    async with XoauthSmtp(challenge=None, refusal="535 5.7.3 Authentication unsuccessful") as server:
        smtp = _xoauth(server, token="wrong")
        with pytest.raises(SmtpTokenRefused) as caught:
            await smtp.connect()
        await smtp.close()
    assert "answer" not in server.logins[0]
    assert caught.value.code == 535 and "5.7.3 Authentication unsuccessful" in caught.value.cause
    assert "The server said" not in caught.value.cause


async def test_a_server_without_xoauth2_says_it_may_not_offer_oauth() -> None:
    async with XoauthSmtp(offer=False) as server:
        smtp = _xoauth(server)
        with pytest.raises(SmtpTokenRefused) as caught:
            await smtp.connect()
        await smtp.close()
    assert server.logins == []
    assert caught.value.code == 504 and "may not offer OAuth2" in caught.value.cause
    _assert_redacted(caught.value.transcript, TOKEN)


async def test_a_temporary_failure_at_xoauth2_is_retried_later_not_a_refused_token() -> None:
    async with XoauthSmtp(challenge=None, refusal="454 4.7.0 Temporary authentication failure") as server:
        smtp = _xoauth(server, token="token-the-server-cannot-check")
        with pytest.raises(SmtpAuthError) as caught:
            await smtp.connect()
        await smtp.close()
    assert not isinstance(caught.value, SmtpTokenRefused)
    assert caught.value.temporary and caught.value.code == 454


@pytest.mark.parametrize(
    ("username", "token", "error"),
    [("connector@contoso.com", "", OAuthError), ("connector@contoso.com", "tok\r\nRSET", OAuthError),
     ("connector@contoso.com", "tok en", OAuthError), ("", "token", ConfigError),
     ("a\x01b@contoso.com", "token", ConfigError)],
    ids=["empty-token", "crlf-token", "space", "no-user", "soh-user"],
)
def test_what_would_break_the_xoauth2_line_is_refused_before_connecting(
        username: str, token: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        SmtpSubmitter("127.0.0.1", 25, security="none", username=username, oauth_token=token)
