"""One POP3 session: list the mailbox, download what is new, DELE what is handled.

The order is what makes the connector lose nothing: RETR (into memory, or a
spool file when big) -> deliver (:mod:`pop3gui.core.engine.delivery`) ->
the outcome is in the journal -> the journal is on disk -> only then DELE.
QUIT commits the deletions; if QUIT never happens the server rolls them back
and the journal stops the next cycle from delivering those messages twice.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncGenerator, Callable

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.connections import LocalServer, pop3_client
from pop3gui.core.engine.delivery import Deliverer
from pop3gui.core.engine.login import AccountLogin
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import AccountResult, Progress
from pop3gui.core.engine.transfer import OpenSink, Transfer, event_for
from pop3gui.core.errors import MailboxError, TlsSetupError
from pop3gui.core.events.model import EventId, Outcome, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.state.journal import Journal
from pop3gui.core.state.spool import Spool



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
        self.transfer = Transfer(account, config=config, journal=journal, spool=spool, deliverer=deliverer,
                                 report=report, local=local, stopping=stopping)

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
            self.transfer.warn_if_unverified()
            await login.log_in(client)
            self._event(EventId.POP3_CONNECTED, Severity.DEBUG,
                        f"Logged in to {account.host}; capabilities: {', '.join(client.capabilities) or 'none'}.")
            sizes, listed = await client.listing()
            uids = await self._uids(client, sizes, listed)
            self.journal.forget_absent(account.name, uids.values())
            to_delete, wanted = self.transfer.plan(sizes, uids, self.journal.records(account.name), res)
            wanted = await self.transfer.local_server_takes(wanted, res)
            progress = Progress(account.name, len(wanted), self.report.observer)
            if wanted:
                window = self.config.performance.pop3_pipeline

                def fetch(open_sink: OpenSink) -> AsyncGenerator[int, None]:
                    return _numbers(client.retr_many([m.number for m in wanted], open_sink, window=window))

                await self.transfer.download_and_deliver(fetch, wanted, res, to_delete, progress)
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
            eid = event_for(exc)
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


async def _numbers(retrieved: AsyncGenerator[tuple[int, int], None]) -> AsyncGenerator[int, None]:
    """RETR's (number, size) pairs as the message numbers the transfer waits for."""
    async with contextlib.aclosing(retrieved):
        async for number, _size in retrieved:
            yield number
