"""The download/submit loop: one cycle over every enabled account.

Per message the order never changes, and it is what makes the connector lose
nothing: RETR (into memory, or a spool file when big) -> resolve recipients ->
submit over SMTP -> record the outcome in the journal -> put the journal on
disk -> only then DELE.  QUIT commits the deletions; if QUIT never happens the
server rolls them back and the journal stops the next cycle from delivering
those messages twice.

Every message is isolated (a broken one is quarantined, not fatal), every
account is isolated (one failing mailbox does not stop the others), and every
step emits an :class:`~pop3gui.core.events.model.Event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import re
import shutil
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

from pop3gui.core.mail import recipients as rcpt
from pop3gui.core.config.schema import AccountConfig, Config, policy_warnings
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.smtp.diagnose import (
    Diagnosis,
    diagnose_message,
    diagnose_recipient,
    domain_of,
    needs_postmaster_probe,
    refusal_label,
)
from pop3gui.core.errors import (
    ConfigError,
    CredentialError,
    Pop3AuthError,
    Pop3CommandError,
    Pop3ConnectionError,
    Pop3Error,
    Pop3InsecureError,
    Pop3InUseError,
    Pop3ProtocolError,
    Pop3TimeoutError,
    Pop3TlsError,
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpTimeoutError,
    StateError,
)
from pop3gui.core.events.model import Event, EventBus, EventId, Severity
from pop3gui.core.mail.fingerprint import file_chunks, message_fingerprint
from pop3gui.core.state.journal import (
    DEFERRED,
    DUPLICATE_WINDOW_DAYS,
    DELETING,
    HANDLED,
    KEY_PREFIX,
    OVERSIZE,
    SUBMITTING,
    Journal,
    uid_key,
)
from pop3gui.core.mail.headers import header_text
from pop3gui.core.mail.messages import header_block, read_header_block, trace_count, trace_header, undeliverable_notice
from pop3gui.core.state.paths import Paths, open_private
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.smtp.submit import RecipientReply, SmtpSubmitter, Submission
from pop3gui.core.smtp.data import MessageSource
from pop3gui.core.state.spool import Quarantine, QuarantineRecord, Spool, SpoolWriter
from pop3gui.core.engine.connections import pop3_client, smtp_submitter

log = logging.getLogger(__name__)
_DAY = 86400.0
MAX_LOOPS = 3  # our own trace lines for the same account before a message counts as looping

_POP3_EVENT_IDS: list[tuple[type[Pop3Error], EventId]] = [
    (Pop3InsecureError, EventId.POP3_INSECURE_REFUSED),
    (Pop3AuthError, EventId.POP3_LOGIN_FAILED),
    (Pop3InUseError, EventId.POP3_MAILBOX_IN_USE),
    (Pop3TlsError, EventId.POP3_TLS_FAILED),
    (Pop3TimeoutError, EventId.POP3_TIMEOUT),
    (Pop3ConnectionError, EventId.POP3_CONNECTION_FAILED),
    (Pop3ProtocolError, EventId.POP3_PROTOCOL_ERROR),
    (Pop3CommandError, EventId.POP3_COMMAND_FAILED),
]


@dataclass
class AccountResult:
    """What one account's cycle did; the runner's exit code is derived from these."""

    account: str
    failed: bool = False
    downloaded: int = 0
    delivered: int = 0
    diverted: int = 0
    quarantined: int = 0
    deferred: int = 0
    too_big: int = 0
    duplicates: int = 0
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    smtp_down: bool = False  # the local server failed this cycle; further failures are not news

    @property
    def clean(self) -> bool:
        """True when every message reached its intended recipients or stayed by rule."""
        return not self.failed and not self.diverted and not self.quarantined and not self.deferred


@dataclass
class CycleResult:
    accounts: list[AccountResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if all(a.clean for a in self.accounts) else 1


@dataclass
class _Msg:
    """One message in flight: identity and what we know of it so far."""

    number: int
    uid: str
    size: int
    spool: Path
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    headers: EmailMessage | None = None
    interrupted: bool = False  # a previous submission ended without a recorded outcome
    data: bytes | None = None  # the message itself while it is small enough to stay in memory
    key: str = ""  # duplicate-suppression key, known once the message is identified (see _identify)

    def header_block(self) -> bytes:
        return header_block(io.BytesIO(self.data)) if self.data is not None else read_header_block(self.spool)

    def source(self, prefix: bytes) -> MessageSource:
        """The message for SMTP DATA, after *prefix* (the trace line)."""
        if self.data is not None:
            return MessageSource(prefix=prefix, data=self.data)
        return MessageSource.from_file(self.spool, prefix)

    def content(self) -> bytes | Path:
        return self.data if self.data is not None else self.spool

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.spool.read_bytes()

    def discard(self) -> None:
        """Forget the downloaded copy (the POP3 server's copy is still there until DELE)."""
        if self.data is not None:
            self.data = None
        else:
            self.spool.unlink(missing_ok=True)


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class _Progress:
    """Messages and bytes handled so far in one mailbox, reported as they change."""

    account: str
    total: int
    report: Callable[[str, int, int, int], None]
    done: int = 0
    size: int = 0

    def __post_init__(self) -> None:
        self.report(self.account, 0, self.total, 0)

    def one_done(self, size: int) -> None:
        self.done += 1
        self.size += size
        self.report(self.account, self.done, self.total, self.size)


class _AbortAccount(Exception):
    """Stop this account's cycle; the event saying why has been emitted."""




class Connector:
    """Runs cycles over the configured accounts; the GUI and the CLI both drive it."""

    def __init__(self, config: Config, paths: Paths, bus: EventBus, *,
                 credentials: Credentials | None = None, journal: Journal | None = None) -> None:
        self.config = config
        self.paths = paths
        self.bus = bus
        self.credentials = credentials or Credentials()
        self.journal = journal or Journal(paths.journal_db)
        self.spool = Spool(paths.spool_dir)
        self.quarantine = Quarantine(paths.quarantine_dir)
        self._stop = asyncio.Event()
        self._smtp_password: str | None = None
        self._warned_policies = False
        self._key_locks: dict[str, _KeyLock] = {}
        self._postmaster_answers: dict[str, bool] = {}  # domain -> takes postmaster@domain (this cycle)
        self._debug = config.logging.level == "debug"
        self._mailbox_locks: dict[tuple[str, int, str], asyncio.Lock] = {}
        self._parallel = asyncio.Semaphore(config.performance.max_parallel_accounts)
        # Called as (account, messages done, messages to do, bytes downloaded) while a mailbox is worked on.
        self.on_progress: Callable[[str, int, int, int], None] | None = None

    # --- control ----------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the message in flight, QUIT the servers, and return from the cycle."""
        if not self._stop.is_set():
            self._stop.set()
            self._emit(EventId.RUNNER_STOPPING, Severity.INFO,
                       "Stopping: finishing the message in flight, then closing the sessions.")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run_forever(self) -> None:
        """Cycle on the schedule until :meth:`request_stop`."""
        while not self.stopping:
            await self.run_cycle()
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.schedule.interval_min * 60)
            except TimeoutError:
                pass

    def close(self) -> None:
        self.journal.close()

    # --- events -----------------------------------------------------------------

    def _emit(self, eid: EventId, severity: Severity, text: str, *, account: str = "",
              msg: _Msg | None = None, cause: str = "", fix: str = "", transcript: str = "") -> None:
        if severity == Severity.DEBUG and not self._debug:
            return  # per-step detail costs a row per message; only kept when the admin asks for it
        self.bus.emit(Event(
            id=eid, severity=severity, text=text, account=account,
            uid=msg.uid if msg else "", message_id=msg.message_id if msg else "",
            subject=msg.subject if msg else "", cause=cause, fix=fix, transcript=transcript,
        ))

    # --- the cycle --------------------------------------------------------------

    async def run_cycle(self) -> CycleResult:
        result = CycleResult()
        self._postmaster_answers.clear()  # the admin may have fixed the server since
        accounts = [a for a in self.config.accounts if a.enabled]
        self._emit(EventId.CYCLE_STARTED, Severity.INFO, f"Retrieving mail from {len(accounts)} account(s).")
        if not self._warned_policies:
            self._warned_policies = True
            for warning in policy_warnings(self.config):
                self._emit(EventId.POLICY_WARNING, Severity.WARNING, warning.text, cause=warning.text,
                           fix=warning.fix)
        self._smtp_password = None
        smtp = self.config.smtp
        if smtp.security != "none" and not smtp.verify_tls:
            self._emit(EventId.TLS_NOT_VERIFIED, Severity.WARNING,
                       f"The certificate of the local mail server {smtp.host} is not checked (verify_tls = false).",
                       cause="Certificate checking is turned off for the local mail server.",
                       fix="Turn it back on; for a private certificate set smtp.ca_file to its CA instead.")
        if self.config.smtp.username:
            try:
                self._smtp_password = await asyncio.to_thread(
                    self.credentials.smtp_password, self.config.smtp.username)
            except CredentialError as exc:
                self._emit(EventId.CREDENTIAL_MISSING, Severity.ERROR, str(exc), cause=exc.cause, fix=exc.fix)
                result.accounts = [AccountResult(a.name, failed=True, errors=[str(exc)]) for a in accounts]
                return self._finish_cycle(result)
        result.accounts = [r for r in await asyncio.gather(*(self._run_limited(a) for a in accounts))
                           if r is not None]
        return self._finish_cycle(result)

    async def _run_limited(self, account: AccountConfig) -> AccountResult | None:
        """Accounts run side by side up to the configured limit, but one mailbox never twice at once."""
        mailbox = (account.host.lower(), account.port, account.username.lower())
        lock = self._mailbox_locks.setdefault(mailbox, asyncio.Lock())
        async with self._parallel, lock:
            if self.stopping:
                return None
            return await self.run_account(account)

    def _finish_cycle(self, result: CycleResult) -> CycleResult:
        delivered = sum(a.delivered for a in result.accounts)
        problems = sum(a.diverted + a.quarantined + a.deferred for a in result.accounts)
        failed = [a.account for a in result.accounts if a.failed]
        text = f"Cycle finished: {delivered} message(s) delivered"
        if problems:
            text += f", {problems} need attention"
        if failed:
            text += f"; failed account(s): {', '.join(failed)}"
        self._emit(EventId.CYCLE_FINISHED, Severity.INFO if result.exit_code == 0 else Severity.WARNING,
                   text + ".")
        return result

    async def run_account(self, account: AccountConfig) -> AccountResult:
        """One account's cycle; never raises for a mail or server problem."""
        res = AccountResult(account.name)
        self._emit(EventId.ACCOUNT_STARTED, Severity.INFO,
                   f"Connecting to {account.host}:{account.port} as {account.username}.", account=account.name)
        # The keyring lookup (slow on some desktops) runs while the connection is set up.
        password = asyncio.ensure_future(asyncio.to_thread(self.credentials.pop3_password, account.name))
        try:
            self._clear_spool(account.name)
            await self._session(account, password, res)
        except CredentialError as exc:
            self._fail(res, EventId.CREDENTIAL_MISSING, exc, account.name)
        except StateError as exc:
            self._fail(res, EventId.SPOOL_FAILED, exc, account.name)
        except _AbortAccount as exc:
            res.failed = True
            res.errors.append(str(exc))
        finally:
            if not password.done():
                password.cancel()
            elif not password.cancelled():
                password.exception()  # a lookup that failed after the connection did is not "never retrieved"
            with contextlib.suppress(OSError, StateError):
                self.spool.clear(account.name)  # downloaded but never submitted: still on the server
        self._emit(EventId.ACCOUNT_FINISHED, Severity.INFO if res.clean else Severity.WARNING,
                   f"{res.delivered} delivered, {res.diverted} diverted to the undeliverable mailbox, "
                   f"{res.quarantined} quarantined, {res.deferred} left for retry, {res.too_big} too big, "
                   f"{res.deleted} deleted on the server.", account=account.name)
        return res

    def _clear_spool(self, account: str) -> None:
        """Drop an interrupted run's leftovers; a failure is a disk problem, not a crash."""
        try:
            self.spool.clear(account)
        except StateError:
            raise
        except OSError as exc:
            raise StateError(
                f"cannot clear the spool folder of account {account!r}: {exc.strerror or exc}",
                cause="A leftover in the spool folder cannot be removed: the state folder is not writable, "
                "or something else is in the way.",
                fix=f"Fix the permissions of {exc.filename or self.spool.root} or remove it; the messages stay "
                "on the POP3 server and are retried next cycle.",
            ) from exc

    def _fail(self, res: AccountResult, eid: EventId, exc: CredentialError | Pop3Error | StateError,
              account: str, transcript: str = "") -> None:
        res.failed = True
        res.errors.append(str(exc))
        self._emit(eid, Severity.ERROR, str(exc), account=account, cause=exc.cause, fix=exc.fix,
                   transcript=transcript)

    async def _session(self, account: AccountConfig, password: asyncio.Future[str], res: AccountResult) -> None:
        client = pop3_client(account)
        to_delete: list[int] = []
        deleting = False  # DELEs sent: only QUIT commits them
        try:
            await client.connect()
            if account.security != "none" and not account.verify_tls:
                self._emit(EventId.TLS_NOT_VERIFIED, Severity.WARNING,
                           f"The certificate of {account.host} is not checked (verify_tls = false).",
                           account=account.name,
                           cause="Certificate checking is turned off for this account, so an attacker on the "
                           "network could pose as the server and read the password.",
                           fix="Turn certificate checking back on; if the server has a private certificate, set "
                           "ca_file to its CA instead.")
            await client.login(account.username, await password)
            self._emit(EventId.POP3_CONNECTED, Severity.DEBUG,
                       f"Logged in to {account.host}; capabilities: {', '.join(client.capabilities) or 'none'}.",
                       account=account.name)
            sizes, listed = await client.listing()
            uids = await self._uids(client, account, sizes, listed)
            self.journal.forget_absent(account.name, uids.values())
            to_delete = await self._process_mailbox(client, account, sizes, uids, res)
            if to_delete:
                self.journal.mark_deleting(account.name, [uids[number] for number in to_delete])
            if to_delete or self.journal.unsynced:  # an idle poll costs no fsync
                self.journal.make_durable()  # the outcomes behind these DELEs reach the disk first
            deleting = True
            await client.dele_many(to_delete, then_quit=True)
            if to_delete:
                self.journal.forget(account.name, [uids[number] for number in to_delete])
        except Pop3Error as exc:
            await client.close()
            eid = next((e for cls, e in _POP3_EVENT_IDS if isinstance(exc, cls)), EventId.POP3_COMMAND_FAILED)
            self._fail(res, eid, exc, account.name, transcript="\n".join(client.transcript))
            if deleting and to_delete:
                self._emit(EventId.POP3_QUIT_FAILED, Severity.WARNING,
                           f"The POP3 session ended before QUIT; the server keeps the {len(to_delete)} handled "
                           "message(s) it was asked to delete.", account=account.name,
                           cause="POP3 deletes messages only when the session ends with QUIT.",
                           fix="Nothing to do: next cycle each is downloaded once more, recognised by its content "
                           "as handled, and deleted without being delivered again.")
            return
        except BaseException:
            await client.close()
            raise
        if to_delete:
            res.deleted = len(to_delete)
            self._emit(EventId.MESSAGE_DELETED, Severity.INFO,
                       f"Deleted {len(to_delete)} handled message(s) on the server.", account=account.name)

    async def _uids(self, client: Pop3Client, account: AccountConfig, sizes: dict[int, int],
                    listing: dict[int, str] | None) -> dict[int, str]:
        """UIDL, or a stable stand-in (header hash + size) where the server has none or repeats one."""
        if listing is None:
            self._emit(EventId.POP3_NO_UIDL, Severity.WARNING,
                       f"{account.host} does not support UIDL; identifying messages by a hash of their headers.",
                       account=account.name,
                       cause="The POP3 server does not offer the UIDL command.",
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

    async def _process_mailbox(self, client: Pop3Client, account: AccountConfig, sizes: dict[int, int],
                               uids: dict[int, str], res: AccountResult) -> list[int]:
        """Handle every message; returns the message numbers to DELE before QUIT."""
        to_delete, wanted = self._plan(account, sizes, uids, res)
        progress = _Progress(account.name, len(wanted), self._progress)
        if wanted:
            await self._download_and_submit(client, account, wanted, res, progress, to_delete)
        return to_delete

    def _plan(self, account: AccountConfig, sizes: dict[int, int], uids: dict[int, str],
              res: AccountResult) -> tuple[list[int], list[_Msg]]:
        """Sort the listing: handled (maybe due for DELE), too big (stays), and to download."""
        limit = self.config.delivery.max_message_kb * 1024
        records = self.journal.records(account.name)
        to_delete: list[int] = []
        wanted: list[_Msg] = []
        for number in sorted(sizes):
            uid, size = uids[number], sizes[number]
            record = records.get(uid)
            if record is not None and record.state == HANDLED:
                if self._due_for_deletion(account, record.handled_at):
                    to_delete.append(number)
                continue
            if size > limit:
                res.too_big += 1
                if record is None or record.state != OVERSIZE:
                    self.journal.note_oversize(account.name, uid, size)
                    self._emit(EventId.MESSAGE_TOO_BIG, Severity.WARNING,
                               f"Message {uid} is {size // 1024} KB, over the {limit // 1024} KB limit; "
                               "it stays on the POP3 server.", account=account.name,
                               cause="delivery.max_message_kb is smaller than this message.",
                               fix="Raise delivery.max_message_kb (and the local server's size limit) or "
                               "fetch the message with a mail client.")
                continue
            msg = _Msg(number, uid, size, self.spool.path_for(account.name, uid))
            msg.interrupted = record is not None and record.state == SUBMITTING
            wanted.append(msg)
        return to_delete, wanted

    async def _download_and_submit(self, client: Pop3Client, account: AccountConfig, wanted: list[_Msg],
                                   res: AccountResult, progress: _Progress, to_delete: list[int]) -> None:
        """One downloader feeds a few submitters through a small queue.

        Downloading (pipelined RETRs) overlaps with submission on several SMTP
        connections; the queue bounds how many messages wait on disk.  A POP3
        failure stops the downloads, but what is already on disk is still
        submitted and recorded; an SMTP session failure stops everything, and
        the messages not yet submitted stay on the server.
        """
        perf = self.config.performance
        workers = max(1, min(perf.smtp_connections, len(wanted)))
        queue: asyncio.Queue[_Msg | None] = asyncio.Queue(maxsize=perf.queue_messages)
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
                        await queue.put(by_number[number])
                        if self.stopping or abort.is_set():
                            break
            except (Pop3Error, StateError) as exc:
                failures.append(exc)
            finally:
                for _ in range(workers):
                    await queue.put(None)

        async def submit() -> None:
            smtp = smtp_submitter(self.config.smtp, self._smtp_password)
            try:
                while (msg := await queue.get()) is not None:
                    if abort.is_set() or self.stopping:  # not started yet: it stays on the server
                        msg.discard()
                        continue
                    try:
                        handled = await self._submit_spooled(account, msg, smtp, res)
                    except (_AbortAccount, StateError) as exc:
                        abort.set()
                        failures.append(exc)
                        continue
                    progress.one_done(msg.size)
                    if handled:
                        if self._due_for_deletion(account, None):
                            to_delete.append(msg.number)
                        elif account.leave_on_server:
                            self._emit(EventId.MESSAGE_KEPT, Severity.DEBUG, "Left on the server "
                                       "(leave_on_server).", account=account.name, msg=msg)
            finally:
                await smtp.close()

        await asyncio.gather(download(), *(submit() for _ in range(workers)))
        to_delete.sort()
        for failure in failures:
            if isinstance(failure, _AbortAccount):
                raise failure
        for failure in failures:
            raise failure

    def _spool_writer(self, by_number: dict[int, _Msg]) -> Callable[[int], SpoolWriter]:
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

    def _progress(self, account: str, done: int, total: int, size: int) -> None:
        if self.on_progress is not None:
            self.on_progress(account, done, total, size)

    def _due_for_deletion(self, account: AccountConfig, handled_at: float | None) -> bool:
        if not account.leave_on_server:
            return True
        if account.delete_after_days <= 0 or handled_at is None:
            return False
        return self.journal.now() - handled_at >= account.delete_after_days * _DAY

    # --- quarantine ---------------------------------------------------------------

    async def resubmit(self, record_id: str) -> str:
        """Resolve and submit a quarantined message again (after the admin fixed the cause).

        Returns what happened in a sentence.  The quarantine entry is removed
        once the message was delivered or diverted with a notice; if it is
        refused for good again, the new quarantine entry replaces the old one.
        """
        record = self.quarantine.get(record_id)
        try:
            account = self.config.account(record.account)
        except KeyError:
            raise ConfigError(
                f"the account {record.account!r} this message came from no longer exists",
                cause="Recipients are resolved with the settings of the account that downloaded the message.",
                fix="Export the message and deliver it by hand, or create the account again.",
            ) from None
        spool = self.spool.path_for(account.name, f"resubmit-{record.id}")
        shutil.copyfile(self.quarantine.message_path(record.id), spool)
        msg = _Msg(0, record.uid, spool.stat().st_size, spool)
        res = AccountResult(account.name)
        if self.config.smtp.username:
            self._smtp_password = await asyncio.to_thread(self.credentials.smtp_password, self.config.smtp.username)
        smtp = smtp_submitter(self.config.smtp, self._smtp_password)
        try:
            await self._deliver(account, msg, smtp, res)
        except SmtpError as exc:
            self._smtp_failed(account, msg, exc, res)
            return f"Not resubmitted: {exc} ({exc.fix})"
        except _AbortAccount as exc:
            return f"Not resubmitted: {exc}"
        finally:
            await smtp.close()
            spool.unlink(missing_ok=True)
        if res.deferred:
            return "The local server deferred the message; it stays in quarantine. Try again later."
        self.journal.make_durable()
        self.quarantine.remove(record.id)
        if res.quarantined:
            return "Refused again; the message is back in quarantine with the new reason (see Events)."
        if res.diverted:
            return "Some recipients were refused again; the message went to the undeliverable mailbox with a notice."
        return "Delivered."

    # --- one message ------------------------------------------------------------

    async def _submit_spooled(self, account: AccountConfig, msg: _Msg, smtp: SmtpSubmitter,
                              res: AccountResult) -> bool:
        """Resolve, submit and record one downloaded message; True once it is handled."""
        try:
            self._identify(account.name, msg)
            if msg.interrupted:  # said once the message is known, so the admin can find it
                self._emit(EventId.RESUBMITTING_INTERRUPTED, Severity.WARNING,
                           "A previous attempt to submit this message ended without a known outcome; "
                           "submitting it again.", account=account.name, msg=msg,
                           cause="The connector stopped, or the connection to the local server dropped while it "
                           "was taking the message, before the outcome could be recorded.",
                           fix="Nothing to do; recipients already recorded as delivered are skipped, so at "
                           "most one of them may receive the message twice.")
            async with self._key_lock(msg):
                return await self._deliver(account, msg, smtp, res)
        except (Pop3Error, StateError, _AbortAccount, asyncio.CancelledError):
            raise
        except SmtpError as exc:
            return self._smtp_failed(account, msg, exc, res)
        except Exception as exc:  # a message that breaks a rule must not stop the mailbox
            log.exception("message %s of %s failed", msg.uid, account.name)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return self._quarantine(account, msg, res, recipients=[],
                                    reason=f"The connector could not process this message: {detail}",
                                    cause="The message is malformed in a way the connector did not expect, "
                                    "or the connector has a bug.",
                                    fix="Look at the message in quarantine; resubmit it or deliver it by hand, "
                                    "and report the event to the pop3gui developers.", transcript="")
        finally:
            with contextlib.suppress(OSError):
                msg.discard()

    @contextlib.asynccontextmanager
    async def _key_lock(self, msg: _Msg) -> AsyncIterator[None]:
        """Two copies of one message are never submitted at once, from any mailbox, so
        duplicate suppression sees the first copy's outcome before it decides on the second."""
        key = msg.key
        entry = self._key_locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._key_locks[key]

    def _smtp_failed(self, account: AccountConfig, msg: _Msg, exc: SmtpError, res: AccountResult) -> bool:
        """The session to the local server failed: keep the message, maybe stop the account."""
        res.deferred += 1
        if not exc.maybe_delivered:  # otherwise the outcome is unknown: the next try says so
            self.journal.defer(account.name, msg.uid)
        session_lost = isinstance(exc, (SmtpAuthError, SmtpConnectionError, SmtpTimeoutError))
        if not (session_lost and res.smtp_down):  # parallel connections fail together: say it once
            self._emit(EventId.SMTP_AUTH_FAILED if isinstance(exc, SmtpAuthError)
                       else EventId.SMTP_CONNECTION_FAILED, Severity.ERROR, str(exc), account=account.name,
                       msg=msg, cause=exc.cause, fix=exc.fix, transcript=exc.transcript)
        if session_lost:
            res.smtp_down = True
            raise _AbortAccount(str(exc))  # the session is gone: the rest would fail the same way
        return False

    def _identify(self, account: str, msg: _Msg) -> EmailMessage:
        """Read the spooled message's headers once: identity, subject, envelope sender, key."""
        if msg.headers is None:
            headers = rcpt.parse_headers(msg.header_block())
            msg.message_id = header_text(headers, "Message-ID").strip()
            msg.subject = header_text(headers, "Subject")
            msg.sender = rcpt.envelope_sender(headers)
            msg.headers = headers
            msg.key = duplicate_key(account, msg, dated=bool(header_text(headers, "Date").strip()))
        return msg.headers

    async def _deliver(self, account: AccountConfig, msg: _Msg, smtp: SmtpSubmitter, res: AccountResult) -> bool:
        headers = self._identify(account.name, msg)
        self._emit(EventId.MESSAGE_DOWNLOADED, Severity.DEBUG, f"Downloaded {msg.size} bytes.",
                   account=account.name, msg=msg)
        loops = trace_count((str(v) for k, v in headers.raw_items() if k.lower() == "received"), account.name)
        if loops >= MAX_LOOPS:
            self._emit(EventId.MAIL_LOOP, Severity.ERROR,
                       f"This message already passed through account {account.name!r} {loops} times; "
                       "it is kept in quarantine instead of being delivered again.", account=account.name, msg=msg,
                       cause="Mail delivered to the local server comes back to this POP3 mailbox (for example a "
                       "forward from the local server to the ISP address, or an auto-reply).",
                       fix="Remove the forwarding rule that sends the office's mail back to the ISP mailbox.")
            return self._quarantine(account, msg, res, recipients=[],
                                    reason=f"Mail loop: already passed through account {account.name!r} {loops} "
                                    "times.", cause="Mail delivered locally comes back to this POP3 mailbox.",
                                    fix="Remove the forwarding that sends it back, then resubmit.", transcript="")
        if account.kind == "user":
            resolution = rcpt.resolve_user(account.deliver_to)
        else:
            resolution = rcpt.resolve_global(
                headers, envelope_headers=account.envelope_headers,
                rules=[rcpt.RoutingRule(r.field, r.contains, r.deliver_to)
                       for r in self.config.rules_for(account.name)],
                local=rcpt.LocalDomains(self.config.local_domains()),
                undeliverable_to=self.config.delivery.undeliverable_to)
        if resolution.foreign:
            self._emit(EventId.FOREIGN_RECIPIENTS_DROPPED, Severity.INFO,
                       f"Not delivering to {len(resolution.foreign)} address(es) outside the recipient policies: "
                       f"{', '.join(resolution.foreign[:10])}{' ...' if len(resolution.foreign) > 10 else ''}.",
                       account=account.name, msg=msg,
                       cause="These addresses are in domains no recipient policy covers; the connector never "
                       "relays mail to foreign domains.",
                       fix="If one of these domains is yours, add it to a recipient policy.")
        if resolution.source == "undeliverable":
            if not resolution.recipients:
                return self._quarantine(account, msg, res, recipients=[],
                                        reason="No local recipient, and no undeliverable mailbox is set.",
                                        cause="No To/Cc/envelope address is in a local domain and "
                                        "delivery.undeliverable_to is empty.",
                                        fix="Set delivery.undeliverable_to, or add routing rules.", transcript="")
            self._emit(EventId.NO_LOCAL_RECIPIENT, Severity.WARNING,
                       f"No local recipient found; delivering to the undeliverable mailbox "
                       f"{resolution.recipients[0]}.", account=account.name, msg=msg,
                       cause="None of the message's To, Cc or envelope addresses is in a recipient policy's "
                       "domain, and no routing rule matched.",
                       fix="Add a routing rule or a recipient policy domain if such mail should reach someone.")

        prior = self.journal.get(account.name, msg.uid)
        if prior is not None and prior.state == DELETING and prior.message_key == msg.key:
            self.journal.restore_handled(account.name, msg.uid)  # a DELE whose QUIT did not commit it
            return True
        retry = prior is not None and prior.state in (SUBMITTING, DEFERRED)
        self.journal.begin(account.name, msg.uid, msg.key, msg.size, message_id=msg.message_id)
        wanted = [address for address in resolution.recipients
                  if not self._already_delivered(account, msg, address, res, retry=retry)]
        if not wanted:
            self.journal.finish(account.name, msg.uid, msg.key, msg.size, "duplicate", message_id=msg.message_id)
            return True

        body = msg.source(trace_header(pop3_host=account.host, account=account.name, uid=msg.uid))
        sub = await smtp.submit(msg.sender, wanted, body)
        delivered = list(sub.accepted)
        if sub.deferred:
            return self._deferred(account, msg, sub, delivered, res)
        refused = list(sub.refused)
        if not refused:
            self.journal.finish(account.name, msg.uid, msg.key, msg.size, "delivered", delivered,
                                message_id=msg.message_id)
            res.delivered += 1
            self._emit(EventId.MESSAGE_DELIVERED, Severity.INFO,
                       f"Delivered to {', '.join(delivered)}.", account=account.name, msg=msg)
            return True
        # Some or all refused for good: the journal keeps who got it, the rest goes to the admin.
        self.journal.record_deliveries(account.name, msg.key, delivered)
        diagnoses = [await self._diagnose_refusal(smtp, reply, sub) for reply in refused]
        for reply, diagnosis in zip(refused, diagnoses, strict=True):
            self._refusal_event(account, msg, reply, sub, diagnosis)
        return await self._divert(account, msg, smtp, sub, refused, diagnoses[0], delivered, res)

    def _already_delivered(self, account: AccountConfig, msg: _Msg, address: str, res: AccountResult, *,
                           retry: bool) -> bool:
        """Has this very message reached *address* already? Then it is not sent again."""
        if retry and self.journal.delivered_under_old_key(account.name, msg.uid, address):
            return True  # this message's own partial progress, recorded by an earlier version
        earlier = self.journal.earlier_delivery(msg.key, address)
        if earlier is None:
            return False
        if retry and earlier.account == account.name:  # an earlier attempt at this message got this far
            self._emit(EventId.DUPLICATE_SUPPRESSED, Severity.DEBUG,
                       f"{address} accepted this message in an earlier attempt; not sending it again.",
                       account=account.name, msg=msg)
            return True
        res.duplicates += 1
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier.delivered_at))
        via = "this account" if earlier.account == account.name else f"account {earlier.account!r}"
        self._emit(EventId.DUPLICATE_SUPPRESSED, Severity.INFO,
                   f"Already delivered to {address} from {via} on {when}: the same message (same Message-ID, "
                   f"headers and body); not delivering it again.", account=account.name, msg=msg,
                   cause=f"The same message reached the connector twice within {DUPLICATE_WINDOW_DAYS} days "
                   "(a copy in another mailbox, or the server listed it again under a new id).",
                   fix="Nothing to do. A message that differs in any header its author wrote or in its body "
                   "is always delivered.")
        return True

    async def _diagnose_refusal(self, smtp: SmtpSubmitter, reply: RecipientReply, sub: Submission) -> Diagnosis:
        """Cause and fix of a refusal; an unclear one is settled by asking for postmaster@domain."""
        if sub.data_code >= 500:
            return diagnose_message(reply.code, reply.message)
        accepted = None
        if needs_postmaster_probe(reply.code, reply.message):
            accepted = await self._postmaster_accepted(smtp, reply.address)
        return diagnose_recipient(reply.code, reply.message, reply.address, postmaster_accepted=accepted)

    async def _postmaster_accepted(self, smtp: SmtpSubmitter, recipient: str) -> bool | None:
        """Does the local server take postmaster@ the recipient's domain? None when it would not say."""
        domain = domain_of(recipient).lower()
        if domain not in self._postmaster_answers:
            try:
                answer = await smtp.takes_postmaster(domain)
            except SmtpError as exc:
                log.info("postmaster probe for %s failed: %s", domain, exc)
                return None
            if answer is None:
                return None
            self._postmaster_answers[domain] = answer
        return self._postmaster_answers[domain]

    def _refusal_event(self, account: AccountConfig, msg: _Msg, reply: RecipientReply, sub: Submission,
                       d: Diagnosis) -> None:
        label = refusal_label(d.kind)
        if sub.data_code >= 500:
            eid, text = EventId.MESSAGE_REFUSED, f"The local server refused the message for {reply.address}" \
                f"{label}: {reply.code} {reply.message}"
        else:
            eid, text = EventId.RECIPIENT_REFUSED, f"The local server refused recipient {reply.address}{label}: " \
                f"{reply.code} {reply.message}"
        self._emit(eid, Severity.ERROR, text, account=account.name, msg=msg, cause=d.cause, fix=d.fix,
                   transcript=sub.transcript)

    def _deferred(self, account: AccountConfig, msg: _Msg, sub: Submission, delivered: list[str],
                  res: AccountResult) -> bool:
        """4xx for some recipients: remember who got it, leave the message for the next cycle."""
        self.journal.record_deliveries(account.name, msg.key, delivered)
        self.journal.defer(account.name, msg.uid)
        res.deferred += 1
        for reply in sub.deferred:
            d = diagnose_recipient(reply.code, reply.message, reply.address)
            self._emit(EventId.RECIPIENT_DEFERRED, Severity.WARNING,
                       f"The local server deferred {reply.address}: {reply.code} {reply.message}; the message "
                       "stays on the POP3 server and is retried next cycle.", account=account.name, msg=msg,
                       cause=d.cause, fix=d.fix, transcript=sub.transcript)
        return False

    async def _divert(self, account: AccountConfig, msg: _Msg, smtp: SmtpSubmitter, sub: Submission,
                      refused: list[RecipientReply], d: Diagnosis, delivered: list[str], res: AccountResult) -> bool:
        """Send the message with a notice to the undeliverable mailbox, or quarantine it."""
        target = self.config.delivery.undeliverable_to
        lines = [f"{r.address}: {r.code} {r.message}" for r in refused]
        all_refused = {r.address.lower() for r in refused}
        reason = "The local mail server refused: " + "; ".join(lines)
        if target and target.lower() not in all_refused:
            notice = undeliverable_notice(
                to=target, subject=f"Undeliverable POP3 mail: {msg.subject}",
                body=_notice_text(account, msg, lines, delivered, d.cause, d.fix, sub.transcript),
                original=msg.read_bytes())
            result = await smtp.submit("", [target], notice)
            if result.accepted:
                self.journal.finish(account.name, msg.uid, msg.key, msg.size, "diverted", delivered,
                                    message_id=msg.message_id)
                res.diverted += 1
                self._emit(EventId.DIVERTED_TO_UNDELIVERABLE, Severity.WARNING,
                           f"Sent to the undeliverable mailbox {target} with a notice: {reason}",
                           account=account.name, msg=msg, cause=d.cause, fix=d.fix, transcript=sub.transcript)
                return True
            if result.deferred:
                return self._deferred(account, msg, result, delivered, res)
            reason += f"; the undeliverable mailbox {target} refused it too: " + "; ".join(
                f"{r.code} {r.message}" for r in result.refused)
        return self._quarantine(account, msg, res, recipients=[r.address for r in refused], reason=reason,
                                cause=d.cause, fix=d.fix, transcript=sub.transcript, delivered=delivered)

    def _quarantine(self, account: AccountConfig, msg: _Msg, res: AccountResult, *, recipients: list[str],
                    reason: str, cause: str, fix: str, transcript: str, delivered: list[str] | None = None) -> bool:
        record = QuarantineRecord(
            id=self.quarantine.new_id(account.name, msg.uid), account=account.name, uid=msg.uid,
            message_id=msg.message_id, sender=msg.sender, subject=msg.subject, date="", recipients=recipients,
            reason=reason, cause=cause, fix=fix, transcript=transcript, quarantined_at=self.journal.now())
        path = self.quarantine.add(msg.content(), record)
        self.journal.finish(account.name, msg.uid, msg.key, msg.size, "quarantined", delivered or [],
                            message_id=msg.message_id)
        res.quarantined += 1
        self._emit(EventId.QUARANTINED, Severity.ERROR, f"Kept in quarantine ({path.name}): {reason}",
                   account=account.name, msg=msg, cause=cause, fix=fix, transcript=transcript)
        return True


def duplicate_key(account: str, msg: _Msg, *, dated: bool) -> str:
    """The journal key under which a message's deliveries are remembered.

    The content fingerprint, shared by every copy of the message in any mailbox.
    A message with neither Message-ID nor Date cannot be told apart from the same
    text sent again later, so only a retry of that very POP3 message (same UIDL,
    same content) is matched.
    """
    fingerprint = message_fingerprint([msg.data] if msg.data is not None else file_chunks(msg.spool))
    if not msg.message_id and not dated:
        return uid_key(account, msg.uid, fingerprint)
    return f"{KEY_PREFIX}{fingerprint}"


def _notice_text(account: AccountConfig, msg: _Msg, refusals: list[str], delivered: list[str], cause: str,
                 fix: str, transcript: str) -> str:
    lines = [
        "The POP3 connector could not deliver this message to every recipient.",
        "",
        f"Account:    {account.name} ({account.username} at {account.host})",
        f"Subject:    {msg.subject}",
        f"Message-ID: {msg.message_id or '-'}",
        f"UIDL:       {msg.uid}",
        "",
        "Refused by the local mail server:",
        *[f"  - {line}" for line in refusals],
    ]
    if delivered:
        lines += ["", "Delivered to:", *[f"  - {a}" for a in delivered]]
    lines += ["", f"Cause: {cause}", f"Fix:   {fix}", "", "SMTP session transcript:", transcript, "",
              "The original message is attached unchanged."]
    return "\n".join(lines)
