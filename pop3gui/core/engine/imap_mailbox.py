"""One IMAP session: every folder of an account, downloaded, delivered, then deleted or moved.

The order is the POP3 session's: UID FETCH (into memory, or a spool file
when big) -> deliver -> the outcome is in the journal -> the journal is on
disk -> only then ``\\Deleted`` and UID EXPUNGE (or MOVE).  A message is known
by its folder, the folder's UIDVALIDITY and its UID
(``imap:<uidvalidity>:<uid>:<folder>``); when a server renumbers a folder
(a new UIDVALIDITY) the old names are forgotten and each message is
recognised by its content, so nothing is delivered twice.

Without UIDPLUS an EXPUNGE removes every ``\\Deleted`` message of the folder,
so it is sent only when all of them are ours; until then ours stay flagged
(journal state ``flagged``) and are expunged by a later cycle.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.connections import LocalServer, imap_client
from pop3gui.core.engine.delivery import Deliverer
from pop3gui.core.engine.login import AccountLogin
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import AccountResult, Progress
from pop3gui.core.engine.transfer import OpenSink, Transfer, event_for
from pop3gui.core.errors import FolderMissingError, MailboxError, TlsSetupError
from pop3gui.core.events.model import EventId, Outcome, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.imap.client import FolderState, ImapClient
from pop3gui.core.state.journal import DELETING, FLAGGED, HANDLED, OVERSIZE, Journal, MessageRecord
from pop3gui.core.state.spool import Spool


def folder_key(folder: str) -> str:
    """A folder as the journal names it: INBOX is INBOX however it is spelt (RFC 3501), other names as they are."""
    return "INBOX" if folder.upper() == "INBOX" else folder


def journal_uid(folder: str, uidvalidity: int, uid: int) -> str:
    """A message's name in the journal: unique across folders and renumberings."""
    return f"imap:{uidvalidity}:{uid}:{folder_key(folder)}"


def parse_journal_uid(name: str) -> tuple[str, int, int] | None:
    """(folder, uidvalidity, uid) of a journal name made by :func:`journal_uid`; None for another kind."""
    parts = name.split(":", 3)
    if len(parts) != 4 or parts[0] != "imap" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[3], int(parts[1]), int(parts[2])


class ImapMailboxSession:
    """Works one IMAP account's folders once; made afresh for every account and cycle."""

    def __init__(self, account: AccountConfig, *, config: Config, journal: Journal, spool: Spool,
                 deliverer: Deliverer, report: Reporter, local: LocalServer,
                 stopping: Callable[[], bool]) -> None:
        self.account = account
        self.config = config
        self.journal = journal
        self.report = report
        self.stopping = stopping
        self.transfer = Transfer(account, config=config, journal=journal, spool=spool, deliverer=deliverer,
                                 report=report, local=local, stopping=stopping)

    def _event(self, eid: EventId, severity: Severity, text: str, *, cause: str = "", fix: str = "",
               diagnosis: Failure | None = None) -> None:
        self.report.event(eid, severity, text, account=self.account.name, cause=cause, fix=fix,
                          diagnosis=diagnosis)

    async def run(self, login: AccountLogin, res: AccountResult) -> None:
        """The whole session; an IMAP failure is reported on *res*, never raised."""
        account = self.account
        try:
            client = imap_client(account)
        except TlsSetupError as exc:
            self.report.failure(res, EventId.POP3_TLS_FAILED, exc)
            return
        try:
            await client.connect()
            self.transfer.warn_if_unverified()
            await login.log_in(client)
            self._event(EventId.POP3_CONNECTED, Severity.DEBUG,
                        f"Logged in to {account.host} (IMAP); capabilities: "
                        f"{' '.join(sorted(client.capabilities)) or 'none'}.")
            for folder in account.folders:
                if self.stopping() or not client.connected:
                    break
                try:
                    await self._folder(client, folder, res)
                except FolderMissingError as exc:  # the other folders are still worth fetching
                    self.report.failure(res, EventId.POP3_COMMAND_FAILED, exc)
            await client.logout()
        except MailboxError as exc:
            await client.close()
            self.report.failure(res, event_for(exc), exc, transcript="\n".join(client.transcript))
        except BaseException:
            await client.close()
            raise

    async def _folder(self, client: ImapClient, folder: str, res: AccountResult) -> None:
        """One folder: list, download and deliver what is new, then remove what is due."""
        account = self.account
        state = await client.select(folder)
        sizes = await client.sizes()
        uids = {uid: journal_uid(folder, state.uidvalidity, uid) for uid in sizes}
        records = self._forget_gone(folder, state, set(uids.values()))
        flagged: list[int] = []
        for uid, name in uids.items():
            record = records.get(name)
            if record is None:
                continue
            if record.state == FLAGGED or (record.state == DELETING and uid in client.marked_deleted):
                flagged.append(uid)
            elif record.state == DELETING:  # its removal was refused or cut short; a UID is never reused
                self.journal.restore_handled(account.name, name)
                records[name] = replace(record, state=HANDLED)
            elif record.state == OVERSIZE:  # its data was larger than the size the server listed
                sizes[uid] = max(sizes[uid], record.size)
        # Ours only wait for their expunge; another program's deleted mail is neither delivered nor removed.
        skipped = set(flagged) | client.marked_deleted
        listed = {uid: size for uid, size in sizes.items() if uid not in skipped}
        due, wanted = self.transfer.plan(listed, uids, records, res)
        wanted = await self.transfer.local_server_takes(wanted, res)
        progress = Progress(account.name, len(wanted), self.report.observer)
        if wanted:
            max_body = self.config.delivery.max_message_kb * 1024

            def fetch(open_sink: OpenSink) -> AsyncGenerator[int, None]:
                return client.fetch_many([m.number for m in wanted], open_sink, max_body=max_body)

            try:
                await self.transfer.download_and_deliver(fetch, wanted, res, due, progress)
            finally:
                self._oversized(client, uids, res)
        if client.connected:  # a run stopped in the middle drops the connection: removal waits for next cycle
            await self._remove(client, folder, uids, due, flagged, res)

    def _oversized(self, client: ImapClient, uids: dict[int, str], res: AccountResult) -> None:
        """Messages whose data outgrew the size the server listed: left on the server, said once."""
        limit = self.config.delivery.max_message_kb * 1024
        for uid, size in client.oversized.items():
            res.too_big += 1
            if self.journal.note_oversize(self.account.name, uids[uid], size):
                self.report.event(EventId.MESSAGE_TOO_BIG, Severity.WARNING,
                                  f"Message {uids[uid]} is over the {limit // 1024} KB limit, though the server "
                                  "listed it as smaller; it stays on the IMAP server.", account=self.account.name,
                                  cause="delivery.max_message_kb is smaller than this message (the server's listed "
                                  "size was an estimate).",
                                  fix="Raise delivery.max_message_kb (and the local server's size limit) or fetch "
                                  "the message with a mail client.", diagnosis=Failure.OVER_SIZE_LIMIT,
                                  outcome=Outcome.LEFT_ON_SERVER)

    def _forget_gone(self, folder: str, state: FolderState, present: set[str]) -> dict[str, MessageRecord]:
        """Forget this folder's messages the server no longer lists; say so once when it renumbered them."""
        records = self.journal.records(self.account.name)
        gone: list[str] = []
        renumbered = False
        for name in records:
            parsed = parse_journal_uid(name)
            if parsed is None or parsed[0] != folder_key(folder) or name in present:
                continue
            gone.append(name)
            renumbered = renumbered or parsed[1] != state.uidvalidity
        if renumbered:  # what was delivered is known by content, whatever its age: not delivered again
            self.journal.renew_deliveries(self.account.name,
                                          [n for n in gone if (p := parse_journal_uid(n)) and p[1] != state.uidvalidity])
        if gone:
            self.journal.forget(self.account.name, gone)
        self.journal.prune_deliveries()
        if renumbered:
            self._event(EventId.IMAP_FOLDER_RENUMBERED, Severity.WARNING,
                        f"The server renumbered folder {folder!r} (its UIDVALIDITY is now {state.uidvalidity}); "
                        "its messages are recognised by their content.",
                        cause="The server rebuilt the folder's index (a restore, a migration, or the folder was "
                        "deleted and made again), so the message numbers this connector knew mean nothing now.",
                        fix="Nothing to do: messages already delivered are not delivered again; they are "
                        "downloaded once more to be recognised, then handled as after_delivery says.",
                        diagnosis=Failure.FOLDER_RENUMBERED)
        return {name: r for name, r in records.items() if name not in gone}

    async def _remove(self, client: ImapClient, folder: str, uids: dict[int, str], due: list[int],
                      flagged: list[int], res: AccountResult) -> None:
        """Delete or move the handled messages that are due; only ever after their outcomes are on disk."""
        account = self.account
        if not due and not flagged:
            return
        names = [uids[uid] for uid in due]
        self.journal.mark_deleting(account.name, names)
        self.journal.make_durable()  # the outcomes behind these removals reach the disk first
        moving = account.after_delivery == "move"
        if moving and due and client.has_move:
            await client.transfer(due, account.move_to, move=True)
            self.journal.forget(account.name, names)
            res.deleted += len(due)
            self._moved(len(due), folder)
            if not flagged:
                return
            due, names = [], []  # moved; what is left are earlier messages waiting for their expunge
        if moving and due:
            await client.transfer(due, account.move_to, move=False)
        # From here only the removal is left: on disk before \Deleted goes out, so a copy made is never made
        # again (a kill between the server's COPY and its answer can still leave one extra copy in move_to).
        self.journal.mark_flagged(account.name, names)
        everything = sorted({*due, *flagged})
        await client.flag_deleted(everything)  # again for the flagged: another program may have undeleted them
        if await client.expunge(everything):
            self.journal.forget(account.name, [uids[uid] for uid in everything])
            res.deleted += len(everything)
            if moving:
                self._moved(len(everything), folder)
            else:
                self._event(EventId.MESSAGE_DELETED, Severity.INFO,
                            f"Deleted {len(everything)} handled message(s) in {folder}.")
            return
        self._event(EventId.IMAP_NOT_EXPUNGED, Severity.WARNING,
                    f"{len(everything)} handled message(s) in {folder} are marked deleted but not yet removed: "
                    "the folder holds other messages marked deleted.",
                    cause="The server lacks UIDPLUS, so removing ours (EXPUNGE) would also remove messages "
                    "another mail program marked deleted but still wants to undo.",
                    fix="Nothing is lost: ours are removed in a later cycle once the folder's other deleted "
                    "messages are gone (empty the deleted items in the other program), or set after_delivery "
                    '= "keep".', diagnosis=Failure.NOT_EXPUNGED)

    def _moved(self, count: int, folder: str) -> None:
        self._event(EventId.MESSAGE_MOVED, Severity.INFO,
                    f"Moved {count} handled message(s) from {folder} to {self.account.move_to}.")
