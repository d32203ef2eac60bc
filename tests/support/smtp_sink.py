"""A recording SMTP server for tests: aiosmtpd on loopback, with faults on demand.

The real Postfix in ``tests/servers`` behaves; this one can be told not to.
It runs in the test's own event loop (no thread), on 127.0.0.1 port 0 (read
``.port`` after ``start()``), and records every message it accepted.

Usage::

    async with SmtpSink(rcpt={"bob@contoso.com": "452 4.2.2 Mailbox full"}) as sink:
        ...  # point SmtpConfig(host="127.0.0.1", port=sink.port) at it
        assert sink.copies_for("alice@contoso.com") == 1

Knobs (attributes; change them between cycles to "fix" the server):

``rcpt``
    ``{address: "452 4.2.2 Mailbox full"}``: the reply to RCPT TO for that
    address (case-insensitive) instead of ``250 OK``.
``data``
    A reply to every DATA instead of ``250 OK`` (the message is not recorded
    unless the reply is 2xx).
``greeting_421``
    Answer every connection with ``421 4.3.2 Service not available`` and close.
``drop_after_data``
    Record the message (the server has it), then drop the connection before
    replying to DATA: the client cannot know the message arrived.
``close_after_data``
    Reply to DATA, then close the session (as a server does when an idle
    session times out while the client downloads the next message).
``login``
    ``(user, password)``: offer AUTH (without TLS); any other
    login is refused with 535.
``mail``
    ``{sender: reply}``: answer MAIL FROM for that sender (``""`` is the null
    sender ``<>``) with the given reply instead of 250.

What it records: ``received`` (one :class:`Received` per accepted DATA),
``connections`` (sessions opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One message the sink accepted: the envelope and the bytes as transmitted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _Handler:
    """aiosmtpd handler hooks that consult the sink's knobs."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        reply = self.sink.mail.get(address.lower().removeprefix("<").removesuffix(">"))  # "<>" is the null sender
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.sink.rcpt.get(address.lower())
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return reply or "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sink = self.sink
        if sink.data is not None and not sink.data.startswith("2"):
            return sink.data
        content = envelope.original_content or b""
        sink.received.append(Received(envelope.mail_from or "", tuple(a.lower() for a in envelope.rcpt_tos),
                                      content))
        transport = server.transport
        assert isinstance(transport, asyncio.Transport)
        if sink.drop_after_data:
            transport.abort()
            # connection_lost() cancels this coroutine: the 250 is never sent.
            await asyncio.Event().wait()
        if sink.close_after_data:
            # Runs after the reply below is written; close() flushes it first.
            asyncio.get_running_loop().call_soon(transport.close)
        return sink.data or "250 OK"


class _Refuse421(asyncio.Protocol):
    """A server that is shutting down: 421 at the greeting, then close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
        transport.close()


class SmtpSink:
    """An in-loop aiosmtpd server that records envelopes; see the module docstring."""

    def __init__(self, *, rcpt: dict[str, str] | None = None, data: str | None = None,
                 greeting_421: bool = False, drop_after_data: bool = False,
                 close_after_data: bool = False, login: tuple[str, str] | None = None,
                 mail: dict[str, str] | None = None) -> None:
        self.rcpt = {k.lower(): v for k, v in (rcpt or {}).items()}
        self.mail = {k.lower(): v for k, v in (mail or {}).items()}
        self.data = data
        self.greeting_421 = greeting_421
        self.drop_after_data = drop_after_data
        self.close_after_data = close_after_data
        self.login = login
        self.received: list[Received] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._protocols: list[asyncio.BaseProtocol] = []

    def copies_for(self, address: str) -> int:
        """How many messages the sink accepted for *address*."""
        return sum(address.lower() in r.rcpt_tos for r in self.received)

    def _factory(self) -> asyncio.BaseProtocol:
        self.connections += 1
        proto: asyncio.BaseProtocol
        if self.greeting_421:
            proto = _Refuse421()
        else:
            auth: dict[str, Any] = {}
            if self.login is not None:
                auth = dict(authenticator=self._authenticate, auth_require_tls=False)
            proto = SMTP(_Handler(self), hostname="sink.test", ident="smtp-sink",
                         loop=asyncio.get_running_loop(), **auth)
        self._protocols.append(proto)
        return proto

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.login == (
            auth_data.login.decode("utf-8", "replace"), auth_data.password.decode("utf-8", "replace"))
        return AuthResult(success=ok, handled=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop open sessions and wait for their handlers to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers: list[asyncio.Task[Any]] = []
        for proto in self._protocols:
            if isinstance(proto, SMTP):
                if isinstance(proto.transport, asyncio.Transport):
                    proto.transport.abort()
                if proto._handler_coroutine is not None:
                    handlers.append(proto._handler_coroutine)
        for task in handlers:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 2)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def unused_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
