"""One POP3 session: list the mailbox, download what is new, DELE what is handled.

The order is what makes the connector lose nothing: RETR (into memory, or a
spool file when big) -> deliver (:mod:`pop3gui.core.engine.delivery`) ->
the outcome is in the journal -> the journal is on disk -> only then DELE.
QUIT commits the deletions; if QUIT never happens the server rolls them back
and the journal stops the next cycle from delivering those messages twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from typing import BinaryIO

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.connections import LocalServer, pop3_client
from pop3gui.core.engine.delivery import AbortAccount, Deliverer
from pop3gui.core.engine.login import AccountLogin
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
    TlsSetupError,
)
from pop3gui.core.events.model import EventId, Outcome, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.state.journal import HANDLED, OVERSIZE, SUBMITTING, Journal
from pop3gui.core.state.paths import open_private
from pop3gui.core.state.spool import Spool, SpoolWriter

_DAY = 86400.0

_POP3_EVENT_IDS: list[tuple[type[MailboxError], EventId]] = [
    (MailboxInsecureError, EventId.POP3_INSECURE_REFUSED),
    (MailboxAuthError, EventId.POP3_LOGIN_FAILED),
    (MailboxInUseError, EventId.POP3_MAILBOX_IN_USE),
    (MailboxTlsError, EventId.POP3_TLS_FAILED),
    (MailboxTimeoutError, EventId.POP3_TIMEOUT),
    (MailboxConnectionError, EventId.POP3_CONNECTION_FAILED),
    (MailboxProtocolError, EventId.POP3_PROTOCOL_ERROR),
    (MailboxCommandError, EventId.POP3_COMMAND_FAILED),
]


class MailboxSession:
    """Works one account's mailbox once; made afresh for every account and cycle."""

    def __init__(self, account: AccountConfig, *, config: Config, journal: Journal, spool: Spool,
                 deliverer: Deliverer, report: Reporter, local: LocalServer,
                 stopping: Callable[[], bool]) -> None:
        self.account = account
        self.config = config
        self.journal = journal
        self.spool = spool
        self.deliverer = deliverer
        self.report = report
        self.local = local
        self.stopping = stopping

    def _event(self, eid: EventId, severity: Severity, text: str, *, cause: str = "", fix: str = "",
               diagnosis: Failure | None = None, outcome: Outcome | None = None) -> None:
        self.report.event(eid, severity, text, account=self.account.name, cause=cause, fix=fix,
                          diagnosis=diagnosis, outcome=outcome)

    async def run(self, login: AccountLogin, res: AccountResult) -> None:
        """The whole session; a POP3 failure is reported on *res*, never raised."""
        account = self.account
        try:
            client = pop3_client(account)
        except TlsSetupError as exc:
            self.report.failure(res, EventId.POP3_TLS_FAILED, exc)
            return
        to_delete: list[int] = []
        deleting = False  # DELEs sent: only QUIT commits them
        try:
            await client.connect()
            if account.security != "none" and not account.verify_tls:
                self._event(EventId.TLS_NOT_VERIFIED, Severity.WARNING,
                            f"The certificate of {account.host} is not checked (verify_tls = false).",
                            cause="Certificate checking is turned off for this account, so an attacker on the "
                            "network could pose as the server and read the password.",
                            fix="Turn certificate checking back on; if the server has a private certificate, set "
                            "ca_file to its CA instead.", diagnosis=Failure.TLS_NOT_VERIFIED)
            await login.log_in(client)
            self._event(EventId.POP3_CONNECTED, Severity.DEBUG,
                        f"Logged in to {account.host}; capabilities: {', '.join(client.capabilities) or 'none'}.")
            sizes, listed = await client.listing()
            uids = await self._uids(client, sizes, listed)
            self.journal.forget_absent(account.name, uids.values())
            to_delete, wanted = self._plan(sizes, uids, res)
            progress = Progress(account.name, len(wanted), self.report.observer)
            if wanted:
                await self._download_and_deliver(client, wanted, res, to_delete, progress)
            if to_delete:
                self.journal.mark_deleting(account.name, [uids[number] for number in to_delete])
            if to_delete or self.journal.unsynced:  # an idle poll costs no fsync
                self.journal.make_durable()  # the outcomes behind these DELEs reach the disk first
            deleting = True
            await client.dele_many(to_delete, then_quit=True)
            if to_delete:
                self.journal.forget(account.name, [uids[number] for number in to_delete])
        except MailboxError as exc:
            await client.close()
            eid = next((e for cls, e in _POP3_EVENT_IDS if isinstance(exc, cls)), EventId.POP3_COMMAND_FAILED)
            self.report.failure(res, eid, exc, transcript="\n".join(client.transcript))
            if deleting and to_delete:
                self._event(EventId.POP3_QUIT_FAILED, Severity.WARNING,
                            f"The POP3 session ended before QUIT; the server keeps the {len(to_delete)} handled "
                            "message(s) it was asked to delete.",
                            cause="POP3 deletes messages only when the session ends with QUIT.",
                            fix="Nothing to do: next cycle each is downloaded once more, recognised by its "
                            "content as handled, and deleted without being delivered again.",
                            diagnosis=Failure.QUIT_FAILED)
            return
        except BaseException:
            await client.close()
            raise
        if to_delete:
            res.deleted = len(to_delete)
            self._event(EventId.MESSAGE_DELETED, Severity.INFO, f"Deleted {len(to_delete)} handled message(s) on "
                        "the server.")

    async def _uids(self, client: Pop3Client, sizes: dict[int, int],
                    listing: dict[int, str] | None) -> dict[int, str]:
        """UIDL, or a stable stand-in (header hash + size) where the server has none or repeats one."""
        if listing is None:
            self._event(EventId.POP3_NO_UIDL, Severity.WARNING,
                        f"{self.account.host} does not support UIDL; identifying messages by a hash of their "
                        "headers.", cause="The POP3 server does not offer the UIDL command.",
                        fix="Nothing to do; downloads are slower because every message's headers are read first.")
            listing = {}
        seen: dict[str, int] = {}
        for uid in listing.values():
            seen[uid] = seen.get(uid, 0) + 1
        uids: dict[int, str] = {}
        for number, size in sizes.items():
            listed = listing.get(number)
            if listed is None or seen[listed] > 1:
                headers = await client.top(number, 0)
                listed = "hash:" + hashlib.sha256(headers).hexdigest()[:32] + f":{size}"
            uids[number] = listed
        return uids

    def _plan(self, sizes: dict[int, int], uids: dict[int, str],
              res: AccountResult) -> tuple[list[int], list[InFlight]]:
        """Sort the listing: handled (maybe due for DELE), too big (stays), and to download."""
        account = self.account
        limit = self.config.delivery.max_message_kb * 1024
        records = self.journal.records(account.name)
        to_delete: list[int] = []
        wanted: list[InFlight] = []
        for number in sorted(sizes):
            uid, size = uids[number], sizes[number]
            record = records.get(uid)
            if record is not None and record.state == HANDLED:
                if self._due_for_deletion(record.handled_at):
                    to_delete.append(number)
                continue
            if size > limit:
                res.too_big += 1
                if record is None or record.state != OVERSIZE:
                    self.journal.note_oversize(account.name, uid, size)
                    self._event(EventId.MESSAGE_TOO_BIG, Severity.WARNING,
                                f"Message {uid} is {size // 1024} KB, over the {limit // 1024} KB limit; "
                                "it stays on the POP3 server.",
                                cause="delivery.max_message_kb is smaller than this message.",
                                fix="Raise delivery.max_message_kb (and the local server's size limit) or "
                                "fetch the message with a mail client.", diagnosis=Failure.OVER_SIZE_LIMIT,
                                outcome=Outcome.LEFT_ON_SERVER)
                continue
            msg = InFlight(number, uid, size, self.spool.path_for(account.name, uid))
            msg.interrupted = record is not None and record.state == SUBMITTING
            wanted.append(msg)
        return to_delete, wanted

    async def _download_and_deliver(self, client: Pop3Client, wanted: list[InFlight], res: AccountResult,
                                    to_delete: list[int], progress: Progress) -> None:
        """One downloader feeds a few submitters through a small queue.

        Downloading (pipelined RETRs) overlaps with submission on several SMTP
        connections; the queue bounds how many messages wait on disk.  A POP3
        failure stops the downloads, but what is already on disk is still
        submitted and recorded; an SMTP session failure stops everything, and
        the messages not yet submitted stay on the server.
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
                stream = client.retr_many([m.number for m in wanted], self._spool_writer(by_number),
                                          window=perf.pop3_pipeline)
                async with contextlib.aclosing(stream):
                    async for number, _size in stream:
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
            smtp = self.local.session()
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
                        if self._due_for_deletion(None):
                            to_delete.append(msg.number)
                        elif account.leave_on_server:
                            self.report.event(EventId.MESSAGE_KEPT, Severity.DEBUG,
                                              "Left on the server (leave_on_server).", account=account.name, msg=msg)
            finally:
                await smtp.close()

        await asyncio.gather(download(), *(submit() for _ in range(workers)))
        to_delete.sort()
        for failure in failures:
            if isinstance(failure, AbortAccount):
                raise failure
        for failure in failures:
            raise failure

    def _spool_writer(self, by_number: dict[int, InFlight]) -> Callable[[int], SpoolWriter]:
        """Where each message is downloaded to; a disk problem becomes a StateError that says so.

        No fsync: until the journal records an outcome, the POP3 server's copy is
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
                        fix="Free disk space or fix the folder's permissions; the message stays on the POP3 "
                        "server and is retried next cycle.",
                    ) from exc

            def keep(data: bytes) -> None:
                msg.data = data

            return SpoolWriter(msg.size, open_file, keep)

        return open_spool

    def _due_for_deletion(self, handled_at: float | None) -> bool:
        account = self.account
        if not account.leave_on_server:
            return True
        if account.delete_after_days <= 0 or handled_at is None:
            return False
        return self.journal.now() - handled_at >= account.delete_after_days * _DAY
