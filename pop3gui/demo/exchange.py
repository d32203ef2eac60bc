"""A stand-in for the office's Exchange server: aiosmtpd on loopback, mail into Maildirs.

It behaves like the local server of KB Q325464: ``RCPT TO`` is accepted only
for its accepted domains (the domains its recipient policies cover); any other
address gets ``550 5.7.1 Unable to relay``, and an address in
:attr:`DemoExchange.unknown` gets ``550 5.1.1 User unknown``.  Each accepted
message is stored once per recipient in ``ROOT/<address>/`` (a
:class:`mailbox.Maildir`) with a ``Delivered-To:`` header naming that recipient.

It runs in-process on the current asyncio loop (``loop.create_server`` with
aiosmtpd's ``SMTP`` protocol, no thread), so the GUI can later drive it on its
one qasync loop.  :meth:`accept_domain` changes the accepted domains while it
runs: the demo's "fix the policy" button.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import mailbox
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

HOSTNAME = "server.corp.contoso.com"


@dataclass(frozen=True)
class RcptAttempt:
    """One ``RCPT TO`` the server was given, and its reply."""

    address: str
    reply: str

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("2")


@dataclass(frozen=True)
class StoredMessage:
    """A message in a recipient's Maildir."""

    recipient: str
    subject: str
    key: str
    data: bytes


class _Handler:
    def __init__(self, exchange: DemoExchange) -> None:
        self.exchange = exchange

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.exchange.rcpt_reply(address)
        self.exchange.rcpt_log.append(RcptAttempt(address, reply))
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        for address in envelope.rcpt_tos:
            self.exchange.store(address, content)
        return "250 2.6.0 Queued mail for delivery"


class DemoExchange:
    """The sandbox's local mail server; see the module docstring."""

    def __init__(self, root: Path, accepted_domains: Iterable[str], *, unknown: Iterable[str] = (),
                 host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self.port = 0
        self.accepted_domains: set[str] = {d.lower() for d in accepted_domains}
        self.unknown: set[str] = {a.lower() for a in unknown}
        self.rcpt_log: list[RcptAttempt] = []
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []

    # --- behaviour ----------------------------------------------------------------

    def accept_domain(self, domain: str) -> None:
        """Accept mail for one more domain from now on (Exchange: add it to a recipient policy)."""
        self.accepted_domains.add(domain.strip().lower())

    def rcpt_reply(self, address: str) -> str:
        local = address.lower()
        if local.rpartition("@")[2] not in self.accepted_domains:
            return f"550 5.7.1 Unable to relay for {address}"
        if local in self.unknown:
            return f"550 5.1.1 User unknown: {address}"
        return f"250 2.1.5 {address}"

    # --- the Maildirs -------------------------------------------------------------

    def maildir(self, address: str) -> mailbox.Maildir:
        return mailbox.Maildir(self.root / address.lower(), create=True)

    def store(self, address: str, content: bytes) -> str:
        """File a message for one recipient, as Exchange would, with its Delivered-To header."""
        return self.maildir(address).add(f"Delivered-To: {address.lower()}\r\n".encode() + content)

    def mailboxes(self) -> list[str]:
        """The addresses that have a Maildir, sorted."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "cur").is_dir())

    def messages(self, address: str | None = None) -> list[StoredMessage]:
        """Every stored message (of one recipient, or of all), oldest first per recipient."""
        parser = email.parser.BytesHeaderParser(policy=email.policy.default)
        found: list[StoredMessage] = []
        for rcpt in [address.lower()] if address else self.mailboxes():
            box = self.maildir(rcpt)
            entries = []
            for key in box.keys():
                data = box.get_bytes(key)
                entries.append((box.get_message(key).get_date(), key, data))
            for _, key, data in sorted(entries):
                subject = str(parser.parsebytes(data).get("Subject", ""))
                found.append(StoredMessage(rcpt, subject, key, data))
        return found

    # --- serving ------------------------------------------------------------------

    def _factory(self) -> SMTP:
        proto = SMTP(_Handler(self), hostname=HOSTNAME, ident="Microsoft ESMTP MAIL Service (pop3gui demo)",
                     loop=asyncio.get_running_loop())
        self._protocols.append(proto)
        return proto

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.get_running_loop().create_server(self._factory, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop open sessions and wait for their handlers to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers: list[asyncio.Task[Any]] = []
        for proto in self._protocols:
            if isinstance(proto.transport, asyncio.Transport):
                proto.transport.abort()
            if proto._handler_coroutine is not None:
                handlers.append(proto._handler_coroutine)
        for task in handlers:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 2)
        self._protocols.clear()
        await server.wait_closed()
