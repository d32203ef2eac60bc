"""A small, strict asyncio POP3 client (RFC 1939, 2449, 2595, 5034).

Written for one job: downloading a mailbox without ever losing or corrupting
a message. So every read has a timeout, every line has a length bound, a
broken stream closes the connection instead of guessing, passwords never
travel in plaintext unless the account says so, and deletions only commit on
a QUIT the server acknowledged.

Commands are split into "send" and "read the reply" so that they can be
pipelined (RFC 2449 PIPELINING) in the transaction state: send N commands,
then read N replies. A login command is always the last of its group.

This module holds the session's commands; the byte stream and its readers
are in :mod:`.stream`, opening the connection and TLS in :mod:`.transport`,
and logging in in :mod:`.login`.
"""

from __future__ import annotations

import collections
import contextlib
import ssl
from collections.abc import AsyncGenerator, Callable, Sequence
from types import TracebackType
from typing import BinaryIO, Self

from pop3gui.core.errors import ConfigError, MailboxConnectionError, MailboxError, MailboxProtocolError
from pop3gui.core.pop3.login import apop_login, ask_capa, oauth_login, password_login
from pop3gui.core.pop3.replies import error_for, parse_list_line, parse_stat, parse_uidl_line, show
from pop3gui.core.pop3.stream import DataSink, Pop3Stream
from pop3gui.core.pop3.transport import SECURITY_MODES, open_connection, starttls, tls_context


class Pop3Client:
    """One POP3 session; use as ``async with Pop3Client(...) as pop:``.

    Leaving the block normally sends QUIT (which commits DELEs); leaving it
    with an exception aborts the connection so the server rolls DELEs back.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        verify_tls: bool = True,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        max_line: int = 64 * 1024,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"unknown POP3 security {security!r}",
                key="security",
                cause="security must be one of: tls, starttls, none.",
                fix='Use "tls" for port 995, "starttls" for port 110 with STLS,'
                ' or "none" only on a network you trust.',
            )
        self.host = host
        self.port = port
        self.security = security
        self.verify_tls = verify_tls
        self._ssl_context = ssl_context
        self.greeting = ""
        self.capabilities: dict[str, list[str]] = {}
        self._stream = Pop3Stream(f"{host}:{port}", timeout=timeout, max_line=max_line)
        self.transcript: collections.deque[str] = self._stream.transcript
        self._quit_done = False

    # ------------------------------------------------------------------ public

    @property
    def where(self) -> str:
        """host:port, as every error message names it."""
        return self._stream.where

    @property
    def timeout(self) -> float:
        """Seconds any one wait for the server may last."""
        return self._stream.timeout

    @property
    def max_line(self) -> int:
        """The longest status or listing line accepted, in bytes."""
        return self._stream.max_line

    @property
    def supports_pipelining(self) -> bool:
        """Whether CAPA announced PIPELINING (RFC 2449)."""
        return "PIPELINING" in self.capabilities

    @property
    def encrypted(self) -> bool:
        """Whether the live connection runs over TLS (asked of the transport itself)."""
        return self._stream.encrypted

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.quit()
        else:
            await self.close()

    async def connect(self) -> None:
        """Open TCP (and TLS), read the greeting, ask CAPA, run STLS if asked to."""
        self._quit_done = False
        tls = self._tls_context() if self.security == "tls" else None
        reader, writer = await open_connection(
            self.host, self.port, tls=tls, timeout=self.timeout, max_line=self.max_line
        )
        stream = self._stream
        stream.attach(reader, writer)
        try:
            reply = await stream.read_status("greeting")
            self.greeting = reply.text
            if not reply.ok:
                raise error_for("the connection", reply, self.where)
            self.capabilities = await ask_capa(stream)
            if self.security == "starttls":
                await starttls(
                    stream,
                    host=self.host,
                    port=self.port,
                    capabilities=self.capabilities,
                    context=self._tls_context(),
                )
                self.capabilities = await ask_capa(stream)
        except BaseException:
            await self.close()
            raise

    async def login(self, user: str, password: str) -> None:
        """Log in with SASL PLAIN when CAPA offers it, else with USER/PASS."""
        self.capabilities = await password_login(
            self._stream,
            security=self.security,
            capabilities=self.capabilities,
            user=user,
            password=password,
        )

    async def apop(self, user: str, password: str) -> None:
        """Log in with APOP, using the timestamp from the server's greeting."""
        self.capabilities = await apop_login(
            self._stream,
            security=self.security,
            capabilities=self.capabilities,
            greeting=self.greeting,
            user=user,
            password=password,
        )

    async def login_oauth(self, user: str, token: str, *, mechanism: str = "xoauth2") -> None:
        """Log in with an OAuth2 access token: SASL ``"xoauth2"`` or ``"oauthbearer"`` (RFC 7628).

        A refused token raises :class:`~pop3gui.core.errors.MailboxTokenRefused`
        with what the server said about it (``status``, ``scope``).
        """
        self.capabilities = await oauth_login(
            self._stream,
            security=self.security,
            capabilities=self.capabilities,
            host=self.host,
            port=self.port,
            user=user,
            token=token,
            mechanism=mechanism,
        )

    async def stat(self) -> tuple[int, int]:
        """(message count, mailbox size in octets)."""
        reply = await self._stream.expect("STAT", "STAT")
        async with self._stream.closing_on_protocol_error():
            return parse_stat(reply, self.where)

    async def list(self) -> dict[int, int]:
        """Message number -> size in octets, as the server reports it."""
        await self._stream.expect("LIST", "LIST")
        return await self._list_lines()

    async def listing(self) -> tuple[dict[int, int], dict[int, str] | None]:
        """LIST and UIDL together, in one round trip when the server pipelines."""
        if not self.supports_pipelining or "UIDL" not in self.capabilities:
            return await self.list(), await self.uidl()
        await self._stream.send("LIST", "UIDL")
        reply = await self._stream.read_status("LIST")
        if not reply.ok:
            raise error_for("LIST", reply, self.where)
        sizes = await self._list_lines()
        return sizes, await self._uidl_answer()

    async def _list_lines(self) -> dict[int, int]:
        lines = await self._stream.read_lines()
        sizes: dict[int, int] = {}
        async with self._stream.closing_on_protocol_error():
            for line in lines:
                number, size = parse_list_line(line, self.where)
                if number in sizes:
                    raise self._duplicate("LIST", line)
                sizes[number] = size
        return sizes

    async def uidl(self) -> dict[int, str] | None:
        """Message number -> unique id, or None when the server has no UIDL."""
        if self.capabilities and "UIDL" not in self.capabilities:
            return None
        await self._stream.send("UIDL")
        return await self._uidl_answer()

    async def _uidl_answer(self) -> dict[int, str] | None:
        reply = await self._stream.read_status("UIDL")
        if not reply.ok:
            if reply.resp_code:
                raise error_for("UIDL", reply, self.where)
            return None
        lines = await self._stream.read_lines()
        uids: dict[int, str] = {}
        async with self._stream.closing_on_protocol_error():
            for line in lines:
                number, uid = parse_uidl_line(line, self.where)
                if number in uids:
                    raise self._duplicate("UIDL", line)
                uids[number] = uid
        return uids

    async def retr_to(self, number: int, out: BinaryIO | DataSink) -> int:
        """Stream message *number* into *out*; returns bytes written.

        On any failure part of the message may already be in *out*; the caller
        must discard it.
        """
        await self._stream.expect(f"RETR {_msg(number)}", "RETR")
        return await self._stream.read_multiline(out)

    async def retr_many(
        self,
        numbers: Sequence[int],
        open_out: Callable[[int], contextlib.AbstractContextManager[DataSink]],
        *,
        window: int = 32,
    ) -> AsyncGenerator[tuple[int, int], None]:
        """RETR each message in turn, yielding ``(number, bytes written)`` as each is complete.

        With RFC 2449 PIPELINING up to ``window`` RETR commands are on the wire at
        once, so a distant server's round trip is paid once per window instead of
        once per message; without it, one at a time.  ``open_out(number)`` gives
        the file each message streams into (closed here).  A consumer that stops
        early must close the generator (``contextlib.aclosing``); replies still
        on the wire are read and dropped before the next command.
        """
        window = max(1, window) if self.supports_pipelining else 1
        queued: collections.deque[int] = collections.deque()
        upcoming = iter(numbers)
        stream = self._stream

        def fill() -> None:
            """Top the window up once it is half empty: several RETRs in one write, not one each."""
            if len(queued) > window // 2:
                return
            commands = []
            while len(queued) < window:
                number = next(upcoming, None)
                if number is None:
                    break
                commands.append(f"RETR {_msg(number)}")
                queued.append(number)
            if commands:
                stream.write(*commands)

        await stream.skip_unread()  # an earlier early-stopped call's replies are not these messages
        try:
            fill()
            await stream.drain()
            while queued:
                number = queued.popleft()
                if window > 1:  # pipelined: top the window up while this message is read
                    fill()
                    await stream.drain()
                reply = await stream.read_status("RETR")
                if not reply.ok:
                    raise error_for("RETR", reply, self.where)
                with open_out(number) as out:
                    size = await stream.read_multiline(out)
                if window == 1:  # one command at a time: the next RETR only once this reply is read
                    fill()
                    await stream.drain()
                yield number, size
        finally:
            stream.drop_retr_replies(len(queued))

    async def dele_many(self, numbers: Sequence[int], *, then_quit: bool = False) -> None:
        """DELE several messages (and QUIT, which commits them), all on the wire at once
        when the server pipelines."""
        if not self.supports_pipelining:
            for number in numbers:
                await self.dele(number)
            if then_quit:
                await self.quit()
            return
        await self._stream.send(
            *[f"DELE {_msg(number)}" for number in numbers], *(["QUIT"] if then_quit else [])
        )
        failure: MailboxError | None = None
        for _ in numbers:
            reply = await self._stream.read_status("DELE")
            if not reply.ok and failure is None:
                failure = error_for("DELE", reply, self.where)
        if then_quit:
            await self._quit_answer()
        if failure is not None:
            raise failure

    async def top(self, number: int, lines: int) -> bytes:
        """Headers plus the first *lines* body lines of message *number*."""
        if lines < 0:
            raise ValueError("TOP line count must be >= 0")
        await self._stream.expect(f"TOP {_msg(number)} {lines}", "TOP")
        chunks: list[bytes] = []

        class _Collect:
            def write(self, data: bytes, /) -> int:
                chunks.append(data)
                return len(data)

        await self._stream.read_multiline(_Collect())
        return b"".join(chunks)

    async def dele(self, number: int) -> None:
        """Mark a message deleted; it only goes away on a successful QUIT."""
        await self._stream.expect(f"DELE {_msg(number)}", "DELE")

    async def rset(self) -> None:
        """Unmark every message marked deleted in this session."""
        await self._stream.expect("RSET", "RSET")

    async def noop(self) -> None:
        """Ask the server for a +OK, to check the session is alive."""
        await self._stream.expect("NOOP", "NOOP")

    async def quit(self) -> None:
        """Send QUIT, which commits DELEs, and close; raise unless the server said +OK."""
        if self._quit_done and not self._stream.connected:
            return
        await self._quit_answer(send=True)

    async def _quit_answer(self, *, send: bool = False) -> None:
        """(Send QUIT and) read its reply and close; raise unless the server committed the session."""
        try:
            if send:
                await self._stream.send("QUIT")
            reply = await self._stream.read_status("QUIT")
        except MailboxConnectionError as exc:
            exc.cause = (
                exc.cause + " Messages marked for deletion may not have been deleted;"
                " they are downloaded again only if not yet recorded as delivered."
            ).strip()
            raise
        finally:
            self._quit_done = True
            await self.close()
        if not reply.ok:
            err = error_for("QUIT", reply, self.where)
            err.cause = "The server could not finish the session; messages marked for"
            err.cause += " deletion may still be on the server."
            raise err

    async def close(self) -> None:
        """Drop the connection without QUIT, so the server rolls back DELEs."""
        await self._stream.close()

    # ------------------------------------------------------------- helpers

    def _tls_context(self) -> ssl.SSLContext:
        return tls_context(self._ssl_context, verify=self.verify_tls)

    def _duplicate(self, command: str, line: bytes) -> MailboxProtocolError:
        return MailboxProtocolError(
            f"The POP3 server {self.where} listed a message number twice in {command}:"
            f" {show(line)}",
            cause=f"Each message may appear once in a {command} listing.",
            fix="Report this to the mail provider.",
            reply=show(line),
        )


def _msg(number: int) -> int:
    """A message number must be a positive int, so it cannot inject text."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(
            f"POP3 message number must be a positive integer, not {number!r}"
        )
    return number


__all__ = ["SECURITY_MODES", "DataSink", "Pop3Client", "MailboxError"]
