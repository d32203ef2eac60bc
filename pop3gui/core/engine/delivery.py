"""One downloaded message's fate: resolve, skip duplicates, submit, record.

Per message the order never changes: identify it -> refuse loops -> resolve its
recipients (never a foreign domain) -> leave out those it already reached ->
submit over SMTP -> record the outcome in the journal.  What the local server
refuses goes on to :mod:`pop3gui.core.engine.refusals`.  A message that
breaks a rule is quarantined, never fatal to its mailbox; a session to the
local server that fails stops the account (the rest would fail alike).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.refusals import Refusals
from pop3gui.core.engine.report import Reporter, server_reply
from pop3gui.core.engine.status import AccountResult
from pop3gui.core.errors import (
    MailboxError,
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpTimeoutError,
    StateError,
)
from pop3gui.core.events.model import EventId, Outcome, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.mail.recipients import Resolution, resolve_global, resolve_user
from pop3gui.core.mail.routing import RoutingRule
from pop3gui.core.mail.messages import trace_count, trace_header
from pop3gui.core.smtp.data import MessageSource
from pop3gui.core.smtp.size import wire_size
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.journal import DEFERRED, DELETING, DUPLICATE_WINDOW_DAYS, SUBMITTING, EarlierDelivery, Journal
from pop3gui.core.state.spool import Quarantine

log = logging.getLogger(__name__)
MAX_LOOPS = 3  # our own trace lines for the same account before a message counts as looping


class AbortAccount(Exception):
    """Stop this account's cycle; the event saying why has been emitted."""


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Deliverer:
    """Delivers downloaded messages for one connector, from any of its mailboxes."""

    def __init__(self, config: Config, journal: Journal, quarantine: Quarantine, report: Reporter) -> None:
        self.config = config
        self.journal = journal
        self.report = report
        self.refusals = Refusals(config, journal, quarantine, report)
        self._key_locks: dict[str, _KeyLock] = {}

    def new_cycle(self) -> None:
        self.refusals.new_cycle()

    async def handle(self, account: AccountConfig, msg: InFlight, smtp: SmtpSubmitter,
                     res: AccountResult) -> bool:
        """Resolve, submit and record one downloaded message; True once it is handled."""
        try:
            msg.identify(account.name)
            if msg.interrupted:  # said once the message is known, so the admin can find it
                self.report.event(
                    EventId.RESUBMITTING_INTERRUPTED, Severity.WARNING,
                    "A previous attempt to submit this message ended without a known outcome; "
                    "submitting it again.", account=account.name, msg=msg,
                    cause="The connector stopped, or the connection to the local server dropped while it "
                    "was taking the message, before the outcome could be recorded.",
                    fix="Nothing to do; recipients already recorded as delivered are skipped, so at "
                    "most one of them may receive the message twice.")
            async with self._key_lock(msg):
                return await self.deliver(account, msg, smtp, res)
        except (MailboxError, StateError, AbortAccount, asyncio.CancelledError):
            raise
        except SmtpError as exc:
            return self.smtp_failed(account, msg, exc, res)
        except Exception as exc:  # a message that breaks a rule must not stop the mailbox
            log.exception("message %s of %s failed", msg.uid, account.name)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return self.refusals.quarantine_message(
                account, msg, res, recipients=[], reason=f"The connector could not process this message: {detail}",
                cause="The message is malformed in a way the connector did not expect, or the connector has a bug.",
                fix="Look at the message in quarantine; resubmit it or deliver it by hand, and report the event "
                "to the pop3gui developers.", transcript="", diagnosis=Failure.MALFORMED)
        finally:
            with contextlib.suppress(OSError):
                msg.discard()

    async def deliver(self, account: AccountConfig, msg: InFlight, smtp: SmtpSubmitter,
                      res: AccountResult, *, resubmission: bool = False) -> bool:
        """The message's way to the local server; True once its outcome is recorded for good.

        A *resubmission* is a quarantined copy sent again: whatever the journal
        says of the POP3 message it came from, this copy is always submitted.
        """
        headers = msg.identify(account.name)
        self.report.event(EventId.MESSAGE_DOWNLOADED, Severity.DEBUG, f"Downloaded {msg.size} bytes.",
                          account=account.name, msg=msg)
        prior = self.journal.get(account.name, msg.uid)
        if not resubmission and prior is not None and prior.state == DELETING and prior.message_key == msg.key:
            self.journal.restore_handled(account.name, msg.uid)  # handled before; a DELE whose QUIT did not commit
            return True
        loops = trace_count((str(v) for k, v in headers.raw_items() if k.lower() == "received"), account.name)
        if loops >= MAX_LOOPS:
            self.report.event(
                EventId.MAIL_LOOP, Severity.ERROR,
                f"This message already passed through account {account.name!r} {loops} times; "
                "it is kept in quarantine instead of being delivered again.", account=account.name, msg=msg,
                cause="Mail delivered to the local server comes back to this POP3 mailbox (for example a "
                "forward from the local server to the ISP address, or an auto-reply).",
                fix="Remove the forwarding rule that sends the office's mail back to the ISP mailbox.",
                diagnosis=Failure.MAIL_LOOP)
            return self.refusals.quarantine_message(
                account, msg, res, recipients=[],
                reason=f"Mail loop: already passed through account {account.name!r} {loops} times.",
                cause="Mail delivered locally comes back to this POP3 mailbox.",
                fix="Remove the forwarding that sends it back, then resubmit.", transcript="",
                diagnosis=Failure.MAIL_LOOP)
        body = msg.source(trace_header(pop3_host=account.host, account=account.name, uid=msg.uid,
                                       protocol=account.protocol.upper()))
        if not resubmission and not await self._local_server_takes(account, msg, body, smtp, res):
            return False
        resolution = self._resolve(account, msg, res)
        if resolution is None:
            return True

        retry = prior is not None and prior.state in (SUBMITTING, DEFERRED)
        self.journal.begin(account.name, msg.uid, msg.key, msg.size, message_id=msg.message_id)
        wanted = self._not_yet_delivered(account, msg, resolution.recipients, res, retry=retry)
        if not wanted:
            self.journal.finish(account.name, msg.uid, msg.key, msg.size, "duplicate", message_id=msg.message_id)
            return True

        sub = await smtp.submit(msg.sender, wanted, body)
        delivered = list(sub.accepted)
        if sub.deferred:
            return self.refusals.deferred(account, msg, sub, delivered, res)
        if sub.refused:
            # Some or all refused for good: the journal keeps who got it, the rest goes to the admin.
            self.journal.record_deliveries(account.name, msg.key, delivered)
            return await self.refusals.refused(account, msg, smtp, sub, delivered, res)
        self.journal.finish(account.name, msg.uid, msg.key, msg.size, "delivered", delivered,
                            message_id=msg.message_id)
        res.delivered += 1
        self.report.event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"Delivered to {', '.join(delivered)}.",
                          account=account.name, msg=msg, recipient=delivered[0] if len(delivered) == 1 else "",
                          outcome=Outcome.DELIVERED)
        return True

    async def _local_server_takes(self, account: AccountConfig, msg: InFlight, body: MessageSource,
                                  smtp: SmtpSubmitter, res: AccountResult) -> bool:
        """False, with the message left on the mail server, when it is over the local server's SIZE limit.

        The listed size was an estimate: the downloaded message, as it would be
        sent, is what the server's announced limit is compared with.
        """
        limit = await smtp.announced_limit()
        if not limit:
            return True
        size = wire_size(body)
        if size <= limit:
            return True
        res.too_big += 1
        if self.journal.note_oversize(account.name, msg.uid, size):
            text, cause, fix = local_limit_text(account, smtp.host, msg.uid, size, limit)
            self.report.event(EventId.MESSAGE_TOO_BIG, Severity.WARNING, text, account=account.name, msg=msg,
                              cause=cause, fix=fix, diagnosis=Failure.OVER_SIZE_LIMIT, outcome=Outcome.LEFT_ON_SERVER)
        return False

    def _resolve(self, account: AccountConfig, msg: InFlight, res: AccountResult) -> Resolution | None:
        """The message's local recipients; None once it went to quarantine for want of any."""
        assert msg.headers is not None
        if account.kind == "user":
            resolution = resolve_user(account.deliver_to)
        else:
            resolution = resolve_global(
                msg.headers, envelope_headers=account.envelope_headers,
                rules=[RoutingRule(r.field, r.contains, r.deliver_to)
                       for r in self.config.rules_for(account.name)],
                local=LocalDomains(self.config.local_domains()),
                undeliverable_to=self.config.delivery.undeliverable_to)
        foreign = resolution.foreign
        if foreign:
            self.report.event(
                EventId.FOREIGN_RECIPIENTS_DROPPED, Severity.INFO,
                f"Not delivering to {len(foreign)} address(es) outside the recipient policies: "
                f"{', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}.", account=account.name, msg=msg,
                cause="These addresses are in domains no recipient policy covers; the connector never "
                "relays mail to foreign domains.", fix="If one of these domains is yours, add it to a recipient "
                "policy.", recipient=foreign[0] if len(foreign) == 1 else "", diagnosis=Failure.FOREIGN_RECIPIENTS)
        if resolution.source != "undeliverable":
            return resolution
        if not resolution.recipients:
            self.refusals.quarantine_message(
                account, msg, res, recipients=[],
                reason="No local recipient, and no undeliverable mailbox is set.",
                cause="No To/Cc/envelope address is in a local domain and delivery.undeliverable_to is empty.",
                fix="Set delivery.undeliverable_to, or add routing rules.", transcript="",
                diagnosis=Failure.NO_LOCAL_RECIPIENT)
            return None
        self.report.event(
            EventId.NO_LOCAL_RECIPIENT, Severity.WARNING,
            f"No local recipient found; delivering to the undeliverable mailbox {resolution.recipients[0]}.",
            account=account.name, msg=msg,
            cause="None of the message's To, Cc or envelope addresses is in a recipient policy's domain, and no "
            "routing rule matched.",
            fix="Add a routing rule or a recipient policy domain if such mail should reach someone.",
            recipient=resolution.recipients[0], diagnosis=Failure.NO_LOCAL_RECIPIENT)
        return resolution

    def _not_yet_delivered(self, account: AccountConfig, msg: InFlight, recipients: Sequence[str],
                           res: AccountResult, *, retry: bool) -> list[str]:
        """The recipients this very message has not reached yet; the others are said and skipped."""
        wanted: list[str] = []
        skipped: list[tuple[str, EarlierDelivery]] = []
        for address in recipients:
            if retry and self.journal.delivered_under_old_key(account.name, msg.uid, address):
                continue  # this message's own partial progress, recorded by an earlier version
            earlier = self.journal.earlier_delivery(msg.key, address)
            if earlier is None:
                wanted.append(address)
            else:
                skipped.append((address, earlier))
        for i, (address, earlier) in enumerate(skipped):
            last = not wanted and i == len(skipped) - 1
            self._suppressed(account, msg, address, earlier, res, retry=retry, last=last)
        if not wanted and not skipped:  # every recipient was reached under the journal's old key
            self.report.event(EventId.DUPLICATE_SUPPRESSED, Severity.INFO,
                              "Every recipient accepted this message in an earlier attempt; not sending it again.",
                              account=account.name, msg=msg, diagnosis=Failure.DUPLICATE,
                              outcome=Outcome.SUPPRESSED)
        return wanted

    def _suppressed(self, account: AccountConfig, msg: InFlight, address: str, earlier: EarlierDelivery,
                    res: AccountResult, *, retry: bool, last: bool) -> None:
        outcome = Outcome.SUPPRESSED if last else None
        if retry and earlier.account == account.name:  # an earlier attempt at this message got this far
            # Detail, unless it is the event that ends the message's handling: that one is always kept.
            self.report.event(EventId.DUPLICATE_SUPPRESSED, Severity.INFO if last else Severity.DEBUG,
                              f"{address} accepted this message in an earlier attempt; not sending it again.",
                              account=account.name, msg=msg, recipient=address, diagnosis=Failure.DUPLICATE,
                              outcome=outcome)
            return
        res.duplicates += 1
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier.delivered_at))
        via = "this account" if earlier.account == account.name else f"account {earlier.account!r}"
        self.report.event(
            EventId.DUPLICATE_SUPPRESSED, Severity.INFO,
            f"Already delivered to {address} from {via} on {when}: the same message (same Message-ID, "
            f"headers and body); not delivering it again.", account=account.name, msg=msg,
            cause=f"The same message reached the connector twice within {DUPLICATE_WINDOW_DAYS} days "
            "(a copy in another mailbox, or the server listed it again under a new id).",
            fix="Nothing to do. A message that differs in any header its author wrote or in its body "
            "is always delivered.", recipient=address, diagnosis=Failure.DUPLICATE, outcome=outcome)

    def smtp_failed(self, account: AccountConfig, msg: InFlight, exc: SmtpError, res: AccountResult) -> bool:
        """The session to the local server failed: keep the message, maybe stop the account."""
        res.deferred += 1
        if not exc.maybe_delivered:  # otherwise the outcome is unknown: the next try says so
            self.journal.defer(account.name, msg.uid)
        session_lost = isinstance(exc, (SmtpAuthError, SmtpConnectionError, SmtpTimeoutError))
        if session_lost and res.smtp_down:  # parallel connections fail together: the cause was said once
            self.report.event(EventId.MESSAGE_DEFERRED, Severity.INFO,
                              "The session to the local server was lost as well; the message stays on the POP3 "
                              "server and is retried next cycle.", account=account.name, msg=msg,
                              diagnosis=exc.failure, outcome=Outcome.DEFERRED)
        else:
            self.report.event(
                EventId.SMTP_AUTH_FAILED if isinstance(exc, SmtpAuthError) else EventId.SMTP_CONNECTION_FAILED,
                Severity.ERROR, str(exc), account=account.name, msg=msg, cause=exc.cause, fix=exc.fix,
                transcript=exc.transcript, reply=server_reply(exc.code, exc.reply) if exc.code else None,
                diagnosis=exc.failure, outcome=Outcome.DEFERRED)
        if session_lost:
            if not res.smtp_down:
                res.fail(str(exc), diagnosis=exc.failure, cause=exc.cause, fix=exc.fix)
            res.smtp_down = True
            raise AbortAccount(str(exc))  # the session is gone: the rest would fail the same way
        return False

    @contextlib.asynccontextmanager
    async def _key_lock(self, msg: InFlight) -> AsyncIterator[None]:
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


def local_limit_text(account: AccountConfig, host: str, uid: str, size: int, limit: int) -> tuple[str, str, str]:
    """Text, cause and fix of a message left on the mail server because the local server's limit is lower."""
    where = "IMAP" if account.protocol == "imap" else "POP3"
    return (f"Message {uid} is {_kb(size)}, over the {_kb(limit)} limit the local mail server {host} announces; "
            f"it stays on the {where} server.",
            f"The local mail server takes messages of at most {limit} bytes (its SIZE announcement), so it would "
            "refuse this one; it is not downloaded or sent.",
            "Raise the local server's message size limit (Postfix: message_size_limit in main.cf; Exchange: the "
            "receive connector's maximum message size), or fetch the message with a mail client.")


def _kb(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1048576:.1f} MB"
