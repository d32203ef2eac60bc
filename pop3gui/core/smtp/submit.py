"""Submission to the local mail server with aiosmtplib, one step at a time.

The transaction is driven command by command (MAIL, RCPT per recipient, DATA)
instead of ``sendmail`` so that each recipient's reply is known on its own and
the whole session can be written into a transcript, like the SBS connector's
event 4022, with the AUTH exchange redacted.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from dataclasses import dataclass

import aiosmtplib

from pop3gui.core.smtp.diagnose import domain_taken
from pop3gui.core.errors import (
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpTimeoutError,
)
from pop3gui.core.smtp.data import BLOCK, DataEncoder, MessageSource
from pop3gui.core.smtp.size import size_limit, wire_size
from pop3gui.core.smtp.transcript import Transcript
from pop3gui.core.smtp.xoauth2 import check_xoauth2, login_xoauth2
from pop3gui.core.threads import in_lookup_thread
from pop3gui.core.tls import client_context

@dataclass(frozen=True)
class RecipientReply:
    address: str
    code: int
    message: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True)
class Submission:
    """What the local server said about one message, recipient by recipient."""

    replies: tuple[RecipientReply, ...]
    data_code: int = 0
    data_message: str = ""
    transcript: str = ""

    @property
    def message_accepted(self) -> bool:
        return 200 <= self.data_code < 300

    @property
    def accepted(self) -> tuple[str, ...]:
        if not self.message_accepted:
            return ()
        return tuple(r.address for r in self.replies if r.accepted)

    @property
    def refused(self) -> tuple[RecipientReply, ...]:
        """Recipients refused for good: 5xx at RCPT, or every recipient on a 5xx at DATA."""
        if self.data_code >= 500:
            return tuple(RecipientReply(r.address, self.data_code, self.data_message)
                         for r in self.replies if r.accepted) + tuple(r for r in self.replies if r.permanent)
        return tuple(r for r in self.replies if r.permanent)

    @property
    def deferred(self) -> tuple[RecipientReply, ...]:
        """Recipients to retry later: 4xx at RCPT, or every accepted one on a 4xx at DATA."""
        soft = tuple(r for r in self.replies if 400 <= r.code < 500)
        if 400 <= self.data_code < 500:
            soft += tuple(RecipientReply(r.address, self.data_code, self.data_message)
                          for r in self.replies if r.accepted)
        return soft


async def _drained(protocol: object) -> None:
    """Wait while the transport's write buffer is over its high-water mark."""
    transport = getattr(protocol, "transport", None)
    if transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    helper = getattr(protocol, "_drain_helper", None)  # asyncio's flow-control mixin
    if helper is not None:
        try:
            await helper()
        except ConnectionError as exc:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost") from exc
    else:  # pragma: no cover - a transport without flow control
        while transport.get_write_buffer_size() > 4 * BLOCK:
            await asyncio.sleep(0.01)


async def this_host_name() -> str:
    """The name this machine gives in EHLO (``socket.getfqdn()``), looked up once per process.

    Left to aiosmtplib, it is looked up at every connection, on a new thread
    of the loop's default executor whenever several connect at once, and a
    reverse DNS lookup can take seconds on an office network whose DNS server
    does not know the PC.
    """
    return await in_lookup_thread(_host_name)


@functools.cache
def _host_name() -> str:
    return socket.getfqdn()  # sessions connecting at once wait on the lookups' thread, then find it here


class SmtpSubmitter:
    """One SMTP session to the local server, reused for many messages.

    ``async with SmtpSubmitter(host, port, ...) as smtp: await smtp.submit(...)``
    """

    def __init__(self, host: str, port: int, *, security: str = "starttls", username: str = "",
                 password: str | None = None, timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None,
                 local_hostname: str | None = None, oauth_token: str | None = None) -> None:
        """With ``oauth_token`` the login is AUTH XOAUTH2 with that access token instead of the password."""
        if oauth_token is not None:
            check_xoauth2(username, oauth_token)
        self.host = host
        self.port = port
        self.security = security  # "tls" (implicit), "starttls" or "none"
        self.username = username
        self.timeout = timeout
        self._password = password
        self._oauth_token = oauth_token
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None
        self._preamble: list[str] = []
        #: The server's SIZE limit after EHLO (RFC 1870): None when it offers no SIZE, 0 when it names none.
        self.size_limit: int | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    async def __aenter__(self) -> SmtpSubmitter:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _tls_context(self) -> ssl.SSLContext:
        return self._ssl_context if self._ssl_context is not None else client_context()

    async def connect(self) -> None:
        log = Transcript()
        smtp = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout, use_tls=self.security == "tls",
            start_tls=False, tls_context=self._tls_context() if self.security != "none" else None,
            local_hostname=self._local_hostname or await this_host_name(),
        )
        try:
            greeting = await smtp.connect()
            log.server(greeting.code, greeting.message)
            log.client(f"EHLO {smtp.local_hostname}")
            reply = await smtp.ehlo()
            log.server(reply.code, reply.message)
            if self.security == "starttls":
                log.client("STARTTLS")
                reply = await smtp.starttls()
                log.server(reply.code, reply.message)
                log.client(f"EHLO {smtp.local_hostname}")
                reply = await smtp.ehlo()
                log.server(reply.code, reply.message)
            if self._oauth_token is not None:
                await login_xoauth2(smtp, self.username, self._oauth_token, log, where=self.where)
            elif self.username:
                log.client("AUTH **** (redacted)")
                reply = await smtp.login(self.username, self._password or "")
                log.server(reply.code, reply.message)
        except SmtpError:  # the XOAUTH2 login's own refusal (a PermissionError, so an OSError too)
            smtp.close()
            raise
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.server(exc.code, exc.message)
            smtp.close()
            raise SmtpAuthError(
                f"the local mail server {self.where} refused the SMTP login for {self.username}",
                cause=f"Wrong user name or password, or the server does not allow this login (reply {exc.code} "
                f"{exc.message}).",
                fix="Check smtp.username and store the right password with `pop3gui secret set --smtp`.",
                code=exc.code, reply=exc.message, transcript=log.text(),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            log.server(exc.code, exc.message)
            smtp.close()
            raise SmtpConnectionError(
                f"the local mail server {self.where} refused the session: {exc.code} {exc.message}",
                cause="The server is busy, shutting down, or does not accept connections from this machine.",
                fix="Check the local mail server's state and its client restrictions; the mail stays on the "
                "POP3 server and is retried next cycle.",
                code=exc.code, reply=exc.message, transcript=log.text(),
            ) from exc
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            smtp.close()
            raise SmtpTimeoutError(
                f"the local mail server {self.where} did not answer in {self.timeout:g} s",
                cause="The server is overloaded or a firewall drops the connection.",
                fix="Check that the local mail server runs and answers on this port; the mail stays on the "
                "POP3 server and is retried next cycle.",
                transcript=log.text(),
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            tls_problem = self._tls_problem(exc, log)
            if tls_problem is not None:
                raise tls_problem from exc
            raise SmtpConnectionError(
                f"cannot connect to the local mail server {self.where}: {exc}",
                cause="The mail server is not running, or smtp.host / smtp.port / smtp.security are wrong.",
                fix="Start the local mail server or correct the [smtp] settings; the mail stays on the POP3 "
                "server and is retried next cycle.",
                transcript=log.text(),
            ) from exc
        self._smtp = smtp
        self._preamble = log.lines
        self.size_limit = size_limit(smtp.esmtp_extensions.get("size"))

    def _tls_problem(self, exc: BaseException, log: Transcript) -> SmtpConnectionError | None:
        """The error for a failed TLS handshake, naming the certificate when that is what failed."""
        seen: BaseException | None = exc
        ssl_error: ssl.SSLError | None = None
        while seen is not None and ssl_error is None:
            ssl_error = seen if isinstance(seen, ssl.SSLError) else None
            seen = seen.__cause__ or seen.__context__
        text = str(ssl_error or exc)
        if ssl_error is None and "[SSL" not in text:
            return None
        detail = getattr(ssl_error, "verify_message", "") or text
        if isinstance(ssl_error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return SmtpConnectionError(
                f"the certificate of the local mail server {self.where} could not be verified "
                f"(certificate verify failed: {detail})",
                cause="The server's certificate is not signed by an authority this computer trusts (nor by the CA "
                "in smtp.ca_file), has expired, or names another host than smtp.host.",
                fix="For a private certificate set smtp.ca_file to its CA certificate (PEM file), and make smtp.host "
                "the name on the certificate. Setting verify_tls = false also works, but then an attacker on the "
                "network could pose as the server; the mail stays on the POP3 server meanwhile.",
                transcript=log.text())
        return SmtpConnectionError(
            f"TLS with the local mail server {self.where} failed: {detail}",
            cause="The port does not speak TLS the way smtp.security says: security = \"tls\" is for a port that "
            "speaks TLS from the first byte (465), \"starttls\" for one that upgrades (587, 25).",
            fix="Match smtp.security to the port; the mail stays on the POP3 server and is retried next cycle.",
            transcript=log.text())

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    async def submit(self, sender: str, recipients: list[str], message: bytes | MessageSource) -> Submission:
        """Send one message; per-recipient replies, never an exception for a refusal.

        A :class:`MessageSource` on a file is streamed block by block, so the
        size of a message does not decide the memory the connector needs.
        """
        source = message if isinstance(message, MessageSource) else MessageSource.from_bytes(message)
        return await self._transaction(sender, recipients, source)

    async def announced_limit(self) -> int:
        """The largest message the server said it takes (connecting if need be); 0 when it set none."""
        if self._smtp is None or not self._smtp.is_connected:
            await self.connect()
        return self.size_limit or 0

    async def probe(self, sender: str, recipients: list[str]) -> Submission:
        """MAIL FROM + RCPT TO + RSET: learn what the server would do, send nothing."""
        return await self._transaction(sender, recipients, None)

    async def takes_postmaster(self, domain: str) -> bool | None:
        """Does the server take postmaster@domain, as RFC 5321 requires of every domain it accepts?

        MAIL FROM:<>, RCPT TO, RSET: nothing is sent. None when the reply does not
        say (the null sender refused, a policy or temporary reply).
        """
        probe = await self.probe("", [f"postmaster@{domain}"])
        if probe.data_code >= 400 or not probe.replies:  # MAIL FROM itself was refused
            return None
        return domain_taken(probe.replies[0].code, probe.replies[0].message)

    async def _transaction(self, sender: str, recipients: list[str], message: MessageSource | None) -> Submission:
        reused = self._smtp is not None and self._smtp.is_connected
        try:
            return await self._transaction_once(sender, recipients, message)
        except SmtpConnectionError as exc:
            # A server may close a kept-open session at any time (Postfix's smtpd_timeout, a
            # restart): if it went before anything of this message was accepted, start afresh.
            if not reused or exc.maybe_delivered or exc.code:
                raise
            return await self._transaction_once(sender, recipients, message)

    async def _transaction_once(self, sender: str, recipients: list[str],
                                message: MessageSource | None) -> Submission:
        if self._smtp is None or not self._smtp.is_connected:
            await self.connect()
        smtp = self._smtp
        assert smtp is not None
        log = Transcript(list(self._preamble))
        replies: list[RecipientReply] = []
        data_sent = False
        try:
            options = []
            size = wire_size(message) if message is not None and self.size_limit is not None else 0
            if self.size_limit and size > self.size_limit:  # refused in advance: not a byte of it is sent
                log.client(f"(not sent: {size} bytes, over the SIZE {self.size_limit} the server announced)")
                text = (f"5.3.4 Message size {size} exceeds the limit of {self.size_limit} bytes the server "
                        "announced (SIZE); not sent")
                return Submission(replies=tuple(RecipientReply(r, 552, text) for r in recipients),
                                  data_code=552, data_message=text, transcript=log.text())
            if message is not None and smtp.supports_extension("8bitmime") and not message.is_ascii():
                options.append("BODY=8BITMIME")
            if size:
                options.append(f"SIZE={size}")
            log.client(f"MAIL FROM:<{sender}>" + "".join(" " + o for o in options))
            try:
                reply = await smtp.mail(sender, options=options)
                log.server(reply.code, reply.message)
            except aiosmtplib.SMTPSenderRefused as exc:
                log.server(exc.code, exc.message)
                await self._reset(log)
                return Submission(replies=tuple(RecipientReply(r, exc.code, exc.message) for r in recipients),
                                  data_code=exc.code, data_message=exc.message, transcript=log.text())
            for rcpt in recipients:
                log.client(f"RCPT TO:<{rcpt}>")
                try:
                    reply = await smtp.rcpt(rcpt)
                    replies.append(RecipientReply(rcpt, reply.code, reply.message))
                except aiosmtplib.SMTPRecipientRefused as exc:
                    replies.append(RecipientReply(rcpt, exc.code, exc.message))
                log.server(replies[-1].code, replies[-1].message)
            if message is None or not any(r.accepted for r in replies):
                await self._reset(log)
                return Submission(replies=tuple(replies), transcript=log.text())
            log.client("DATA")
            data_sent = True
            try:
                reply = await self._stream_data(smtp, message)
                log.client(f"<{message.size()} bytes of message>")
                log.server(reply.code, reply.message)
                data_code, data_message = reply.code, reply.message
            except aiosmtplib.SMTPDataError as exc:
                log.server(exc.code, exc.message)
                data_code, data_message = exc.code, exc.message
                await self._reset(log)
            return Submission(replies=tuple(replies), data_code=data_code, data_message=data_message,
                              transcript=log.text())
        except aiosmtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise SmtpConnectionError(
                f"the local mail server {self.where} closed the connection: {exc}",
                cause="The server restarted or dropped the session; if this happened after the message data "
                "was sent, the server may have accepted it anyway.",
                fix="Nothing to do if it passes: the message stays on the POP3 server and is retried next cycle "
                "(at worst the local server receives it twice).",
                transcript=log.text(), maybe_delivered=data_sent,
            ) from exc
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            self._drop()
            raise SmtpTimeoutError(
                f"the local mail server {self.where} stopped answering",
                cause="The server is overloaded or stuck.",
                fix="Check the local mail server; the message stays on the POP3 server and is retried next cycle.",
                transcript=log.text(), maybe_delivered=data_sent,
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            log.server(exc.code, exc.message)
            self._drop()
            raise SmtpError(
                f"the local mail server {self.where} gave an unexpected reply: {exc.code} {exc.message}",
                cause="The server is in a state the connector did not expect.",
                fix="Read the transcript and the server's log; the message stays on the POP3 server.",
                code=exc.code, reply=exc.message, transcript=log.text(),
            ) from exc

    async def _stream_data(self, smtp: aiosmtplib.SMTP, message: MessageSource) -> aiosmtplib.SMTPResponse:
        """DATA, then the message block by block with flow control, then the final reply.

        aiosmtplib's ``data()`` wants the whole message in memory and copies it
        three times; this writes encoded blocks and waits whenever the socket's
        buffer is full, so memory stays at a block or two.
        """
        reply = await smtp.execute_command(b"DATA")
        if reply.code != 354:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        encoder = DataEncoder()
        unsent: list[bytes] = []  # encoded data gathered into writes of about a block: one send for a small message
        unsent_size = 0
        for block in message.blocks():
            unsent.append(encoder.feed(block))
            unsent_size += len(unsent[-1])
            if unsent_size >= BLOCK:
                protocol.write(b"".join(unsent))
                unsent.clear()
                unsent_size = 0
                await _drained(protocol)
        unsent.append(encoder.finish())
        # Wait for the reply before the last bytes go out, so it cannot arrive unawaited.
        final = asyncio.ensure_future(protocol.read_response(timeout=self.timeout))
        await asyncio.sleep(0)
        try:
            protocol.write(b"".join(unsent))
        except BaseException:
            final.cancel()
            raise
        reply = await final
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        return reply

    async def _reset(self, log: Transcript) -> None:
        assert self._smtp is not None
        log.client("RSET")
        try:
            reply = await self._smtp.rset()
            log.server(reply.code, reply.message)
        except aiosmtplib.SMTPException:
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
