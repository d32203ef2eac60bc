"""Where a refused recipient becomes a diverted or quarantined message.

The local server's refusals are the KB article's failure: mail that the
connector downloaded but the office server would not take.  Nothing is
dropped here.  A refusal for good is diagnosed (its meaning, cause and fix;
an unclear one is settled by asking for ``postmaster@domain``), then the
message goes to the undeliverable mailbox with a notice, or, when there is
none or it refuses too, into quarantine for the admin to resubmit.  A
temporary refusal leaves the message on the POP3 server for the next cycle.
"""

from __future__ import annotations

import asyncio
import logging

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.report import Reporter, server_reply
from pop3gui.core.engine.status import AccountResult
from pop3gui.core.errors import SmtpError
from pop3gui.core.events.model import EventId, Outcome, Reply, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.mail.messages import undeliverable_notice
from pop3gui.core.smtp.diagnose import (
    Diagnosis,
    diagnose_message,
    diagnose_recipient,
    domain_of,
    needs_postmaster_probe,
    refusal_label,
)
from pop3gui.core.smtp.submit import RecipientReply, SmtpSubmitter, Submission
from pop3gui.core.state.journal import Journal
from pop3gui.core.state.spool import Quarantine, QuarantineRecord

log = logging.getLogger(__name__)


class Refusals:
    """Handles what the local server would not take, for one connector."""

    def __init__(self, config: Config, journal: Journal, quarantine: Quarantine, report: Reporter) -> None:
        self.config = config
        self.journal = journal
        self.quarantine = quarantine
        self.report = report
        self._postmaster_answers: dict[str, bool] = {}  # domain -> takes postmaster@domain (this cycle)
        self._postmaster_asking: dict[str, asyncio.Lock] = {}  # one question per domain, also across sessions

    def new_cycle(self) -> None:
        """The admin may have fixed the server since: ask postmaster@ again."""
        self._postmaster_answers.clear()
        self._postmaster_asking.clear()

    async def refused(self, account: AccountConfig, msg: InFlight, smtp: SmtpSubmitter, sub: Submission,
                      delivered: list[str], res: AccountResult) -> bool:
        """Some or all recipients refused for good: say why, then divert or quarantine the message."""
        refused = list(sub.refused)
        diagnoses = [await self._diagnose(smtp, reply, sub) for reply in refused]
        for reply, diagnosis in zip(refused, diagnoses, strict=True):
            self._refusal_event(account, msg, reply, sub, diagnosis)
        return await self._divert(account, msg, smtp, sub, refused, diagnoses[0], delivered, res)

    def deferred(self, account: AccountConfig, msg: InFlight, sub: Submission, delivered: list[str],
                 res: AccountResult) -> bool:
        """4xx for some recipients: remember who got it, leave the message for the next cycle."""
        self.journal.record_deliveries(account.name, msg.key, delivered)
        self.journal.defer(account.name, msg.uid)
        res.deferred += 1
        for i, reply in enumerate(sub.deferred):
            d = diagnose_recipient(reply.code, reply.message, reply.address)
            self.report.event(
                EventId.RECIPIENT_DEFERRED, Severity.WARNING,
                f"The local server deferred {reply.address}: {reply.code} {reply.message}; the message "
                "stays on the POP3 server and is retried next cycle.", account=account.name, msg=msg,
                cause=d.cause, fix=d.fix, transcript=sub.transcript, recipient=reply.address,
                reply=server_reply(reply.code, reply.message), diagnosis=d.kind,
                outcome=Outcome.DEFERRED if i == len(sub.deferred) - 1 else None)
        return False

    def quarantine_message(self, account: AccountConfig, msg: InFlight, res: AccountResult, *,
                           recipients: list[str], reason: str, cause: str, fix: str, transcript: str,
                           diagnosis: Failure, delivered: list[str] | None = None,
                           reply: Reply | None = None) -> bool:
        """Keep the message here for the admin; its handling on the POP3 side is done."""
        record = QuarantineRecord(
            id=self.quarantine.new_id(account.name, msg.uid), account=account.name, uid=msg.uid,
            message_id=msg.message_id, sender=msg.sender, subject=msg.subject, date="", recipients=recipients,
            reason=reason, cause=cause, fix=fix, transcript=transcript, quarantined_at=self.journal.now())
        path = self.quarantine.add(msg.content(), record)
        self.journal.finish(account.name, msg.uid, msg.key, msg.size, "quarantined", delivered or [],
                            message_id=msg.message_id)
        res.quarantined += 1
        self.report.event(EventId.QUARANTINED, Severity.ERROR, f"Kept in quarantine ({path.name}): {reason}",
                          account=account.name, msg=msg, cause=cause, fix=fix, transcript=transcript,
                          recipient=recipients[0] if len(recipients) == 1 else "", reply=reply,
                          diagnosis=diagnosis, outcome=Outcome.QUARANTINED)
        return True

    # --- diagnosis ----------------------------------------------------------------

    async def _diagnose(self, smtp: SmtpSubmitter, reply: RecipientReply, sub: Submission) -> Diagnosis:
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
        async with self._postmaster_asking.setdefault(domain, asyncio.Lock()):
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

    def _refusal_event(self, account: AccountConfig, msg: InFlight, reply: RecipientReply, sub: Submission,
                       d: Diagnosis) -> None:
        label = refusal_label(d.kind)
        if sub.data_code >= 500:
            eid, text = EventId.MESSAGE_REFUSED, f"The local server refused the message for {reply.address}" \
                f"{label}: {reply.code} {reply.message}"
        else:
            eid, text = EventId.RECIPIENT_REFUSED, f"The local server refused recipient {reply.address}{label}: " \
                f"{reply.code} {reply.message}"
        self.report.event(eid, Severity.ERROR, text, account=account.name, msg=msg, cause=d.cause, fix=d.fix,
                          transcript=sub.transcript, recipient=reply.address,
                          reply=server_reply(reply.code, reply.message), diagnosis=d.kind)

    # --- where the message goes ---------------------------------------------------

    async def _divert(self, account: AccountConfig, msg: InFlight, smtp: SmtpSubmitter, sub: Submission,
                      refused: list[RecipientReply], d: Diagnosis, delivered: list[str],
                      res: AccountResult) -> bool:
        """Send the message with a notice to the undeliverable mailbox, or quarantine it."""
        target = self.config.delivery.undeliverable_to
        lines = [f"{r.address}: {r.code} {r.message}" for r in refused]
        all_refused = {r.address.lower() for r in refused}
        reason = "The local mail server refused: " + "; ".join(lines)
        one = refused[0] if len(refused) == 1 else None
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
                self.report.event(
                    EventId.DIVERTED_TO_UNDELIVERABLE, Severity.WARNING,
                    f"Sent to the undeliverable mailbox {target} with a notice: {reason}", account=account.name,
                    msg=msg, cause=d.cause, fix=d.fix, transcript=sub.transcript,
                    recipient=one.address if one else "", reply=server_reply(one.code, one.message) if one else None,
                    diagnosis=d.kind, outcome=Outcome.DIVERTED)
                return True
            if result.deferred:
                return self.deferred(account, msg, result, delivered, res)
            reason += f"; the undeliverable mailbox {target} refused it too: " + "; ".join(
                f"{r.code} {r.message}" for r in result.refused)
        return self.quarantine_message(account, msg, res, recipients=[r.address for r in refused], reason=reason,
                                       cause=d.cause, fix=d.fix, transcript=sub.transcript, delivered=delivered,
                                       diagnosis=d.kind, reply=server_reply(one.code, one.message) if one else None)


def _notice_text(account: AccountConfig, msg: InFlight, refusals: list[str], delivered: list[str], cause: str,
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
