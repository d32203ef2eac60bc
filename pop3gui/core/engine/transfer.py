"""What a POP3 session and an IMAP folder share: sorting a listing, and downloading while delivering.

A listing (message -> size, message -> journal uid) is sorted into handled
messages (maybe due for removal), messages too big (they stay), and messages
to download.  Those are downloaded by one task and delivered by a few
submitters through a small queue, so the download overlaps with submission;
what the protocol client does (RETR, UID FETCH) is the only difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import BinaryIO

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.connections import LocalServer
from pop3gui.core.engine.delivery import AbortAccount, Deliverer, local_limit_text
from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import AccountResult, Progress
from pop3gui.core.errors import (
    MailboxAuthError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
    MailboxInsecureError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTimeoutError,
    MailboxTlsError,
    StateError,
)
from pop3gui.core.events.model import EventId, Outcome, Severity
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.failures import Failure
from pop3gui.core.state.journal import HANDLED, OVERSIZE, SUBMITTING, Journal, MessageRecord
from pop3gui.core.state.paths import open_private
from pop3gui.core.state.spool import Spool, SpoolWriter

_DAY = 86400.0
#: What a listed size may grow by on its way to the local server: our trace line, CRLF line endings.
SIZE_MARGIN = 1024

#: Opens the sink one message is downloaded into, by its number (POP3 message number, IMAP UID).
OpenSink = Callable[[int], SpoolWriter]
#: Starts the download of the wanted messages; yields each number once its message is whole.
Fetch = Callable[[OpenSink], AsyncGenerator[int, None]]


_EVENT_IDS: list[tuple[type[MailboxError], EventId]] = [
    (MailboxInsecureError, EventId.POP3_INSECURE_REFUSED),
    (MailboxAuthError, EventId.POP3_LOGIN_FAILED),
    (MailboxInUseError, EventId.POP3_MAILBOX_IN_USE),
    (MailboxTlsError, EventId.POP3_TLS_FAILED),
    (MailboxTimeoutError, EventId.POP3_TIMEOUT),
    (MailboxConnectionError, EventId.POP3_CONNECTION_FAILED),
    (MailboxProtocolError, EventId.POP3_PROTOCOL_ERROR),
    (MailboxCommandError, EventId.POP3_COMMAND_FAILED),
]


def event_for(exc: MailboxError) -> EventId:
    """The event id that reports a failed session with the mailbox server (the same ids for POP3 and IMAP)."""
    return next((e for cls, e in _EVENT_IDS if isinstance(exc, cls)), EventId.POP3_COMMAND_FAILED)


class Transfer:
    """One account's listing, planned and worked; made afresh for every session."""

    def __init__(self, account: AccountConfig, *, config: Config, journal: Journal, spool: Spool,
                 deliverer: Deliverer, report: Reporter, local: LocalServer, stopping: Callable[[], bool]) -> None:
        self.account = account
        self.config = config
        self.journal = journal
        self.spool = spool
        self.deliverer = deliverer
        self.report = report
        self.local = local
        self.stopping = stopping
        self._opened: SmtpSubmitter | None = None  # the session that learned the SIZE limit, for the first submitter

    def warn_if_unverified(self) -> None:
        """Said on every connection while the account does not check the server's certificate."""
        account = self.account
        if account.security != "none" and not account.verify_tls:
            self.report.event(EventId.TLS_NOT_VERIFIED, Severity.WARNING,
                              f"The certificate of {account.host} is not checked (verify_tls = false).",
                              account=account.name,
                              cause="Certificate checking is turned off for this account, so an attacker on the "
                              "network could pose as the server and read the password.",
                              fix="Turn certificate checking back on; if the server has a private certificate, "
                              "set ca_file to its CA instead.", diagnosis=Failure.TLS_NOT_VERIFIED)

    def due_for_removal(self, handled_at: float | None) -> bool:
        """Whether a handled message is to leave the server now (leave_on_server, delete_after_days)."""
        account = self.account
        if account.protocol == "imap" and account.after_delivery == "keep":
            return False
        if not account.leave_on_server:
            return True
        if account.delete_after_days <= 0 or handled_at is None:
            return False
        return self.journal.now() - handled_at >= account.delete_after_days * _DAY

    def plan(self, sizes: dict[int, int], uids: dict[int, str], records: dict[str, MessageRecord],
             res: AccountResult) -> tuple[list[int], list[InFlight]]:
        """Sort a listing: handled (maybe due for removal), too big (stays), and to download."""
        account = self.account
        limit = self.config.delivery.max_message_kb * 1024
        due: list[int] = []
        wanted: list[InFlight] = []
        for number in sorted(sizes):
            uid, size = uids[number], sizes[number]
            record = records.get(uid)
            if record is not None and record.state == OVERSIZE:  # its data was found larger than listed
                size = max(size, record.size)
            if record is not None and record.state == HANDLED:
                if self.due_for_removal(record.handled_at):
                    due.append(number)
                continue
            if size > limit:
                res.too_big += 1
                if record is None or record.state != OVERSIZE:
                    self.journal.note_oversize(account.name, uid, size)
                    where = "IMAP" if account.protocol == "imap" else "POP3"
                    self.report.event(EventId.MESSAGE_TOO_BIG, Severity.WARNING,
                                      f"Message {uid} is {size // 1024} KB, over the {limit // 1024} KB limit; "
                                      f"it stays on the {where} server.", account=account.name,
                                      cause="delivery.max_message_kb is smaller than this message.",
                                      fix="Raise delivery.max_message_kb (and the local server's size limit) or "
                                      "fetch the message with a mail client.", diagnosis=Failure.OVER_SIZE_LIMIT,
                                      outcome=Outcome.LEFT_ON_SERVER)
                continue
            msg = InFlight(number, uid, size, self.spool.path_for(account.name, uid))
            msg.interrupted = record is not None and record.state == SUBMITTING
            wanted.append(msg)
        return due, wanted

    async def local_server_takes(self, wanted: list[InFlight], res: AccountResult) -> list[InFlight]:
        """*wanted* without the messages the local server announced it refuses (RFC 1870 SIZE).

        Those stay on the mail server undownloaded, said once; the listed size
        is an estimate, so a message within the margin is downloaded and
        measured again before it is sent (:meth:`Deliverer.deliver`).
        """
        if not wanted:
            return wanted
        limit, opened = await self.local.size_limit()
        self._opened = opened
        if not limit:
            return wanted
        kept: list[InFlight] = []
        for msg in wanted:
            if msg.size + SIZE_MARGIN <= limit:
                kept.append(msg)
            else:
                res.too_big += 1
                if self.journal.note_oversize(self.account.name, msg.uid, msg.size):
                    text, cause, fix = local_limit_text(self.account, self.local.config.host, msg.uid, msg.size,
                                                        limit)
                    self.report.event(EventId.MESSAGE_TOO_BIG, Severity.WARNING, text, account=self.account.name,
                                      cause=cause, fix=fix, diagnosis=Failure.OVER_SIZE_LIMIT,
                                      outcome=Outcome.LEFT_ON_SERVER)
        if not kept:
            await self._close_opened()
        return kept

    async def _close_opened(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.close()

    async def download_and_deliver(self, fetch: Fetch, wanted: list[InFlight], res: AccountResult,
                                   due: list[int], progress: Progress) -> None:
        """One downloader feeds a few submitters through a small queue; handled messages due go to *due*.

        A download failure stops the downloads, but what is already here is
        still submitted and recorded; an SMTP session failure stops
        everything, and the messages not yet submitted stay on the server.
        """
        account = self.account
        perf = self.config.performance
        workers = max(1, min(perf.smtp_connections, len(wanted)))
        queue: asyncio.Queue[InFlight | None] = asyncio.Queue(maxsize=perf.queue_messages)
        abort = asyncio.Event()
        failures: list[BaseException] = []
        by_number = {m.number: m for m in wanted}

        async def download() -> None:
            try:
                stream = fetch(self._spool_writer(by_number))
                async with contextlib.aclosing(stream):
                    async for number in stream:
                        res.downloaded += 1
                        progress.one_downloaded()
                        await queue.put(by_number[number])
                        if self.stopping() or abort.is_set():
                            break
            except (MailboxError, StateError) as exc:
                failures.append(exc)
            finally:
                for _ in range(workers):
                    await queue.put(None)

        async def submit() -> None:
            smtp, self._opened = self._opened or self.local.session(), None
            try:
                while (msg := await queue.get()) is not None:
                    if abort.is_set() or self.stopping():  # not started yet: it stays on the server
                        msg.discard()
                        continue
                    try:
                        handled = await self.deliverer.handle(account, msg, smtp, res)
                    except (AbortAccount, StateError) as exc:
                        abort.set()
                        failures.append(exc)
                        continue
                    progress.one_done(msg.size)
                    if handled:
                        if self.due_for_removal(None):
                            due.append(msg.number)
                        else:
                            why = "leave_on_server" if account.leave_on_server else "after_delivery = keep"
                            self.report.event(EventId.MESSAGE_KEPT, Severity.DEBUG, f"Left on the server ({why}).",
                                              account=account.name, msg=msg)
            finally:
                await smtp.close()

        try:
            await asyncio.gather(download(), *(submit() for _ in range(workers)))
        finally:
            await self._close_opened()
        due.sort()
        for failure in failures:
            if isinstance(failure, AbortAccount):
                raise failure
        for failure in failures:
            raise failure

    def _spool_writer(self, by_number: dict[int, InFlight]) -> OpenSink:
        """Where each message is downloaded to; a disk problem becomes a StateError that says so.

        No fsync: until the journal records an outcome, the server's copy is
        the one that counts, and a spool file left by a crash is thrown away unread.
        """
        def open_spool(number: int) -> SpoolWriter:
            msg = by_number[number]

            def open_file() -> BinaryIO:
                try:
                    return open_private(msg.spool)
                except OSError as exc:
                    raise StateError(
                        f"cannot write message {msg.uid} to the spool folder: {exc.strerror}",
                        cause="The disk is full or the state folder is not writable.",
                        fix="Free disk space or fix the folder's permissions; the message stays on the mail "
                        "server and is retried next cycle.",
                    ) from exc

            def keep(data: bytes) -> None:
                msg.data = data

            return SpoolWriter(msg.size, open_file, keep)

        return open_spool

