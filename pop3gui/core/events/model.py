"""Events: what the connector did, as frozen records with stable ids.

Every step of a run emits an :class:`Event`.  Failure events carry the cause
and the fix in plain words and, for SMTP, the whole session transcript (the SBS
connector's events 4032/4022, but shown at every logging level).  The ids are
a user-facing contract documented in ``docs/events.md``: never renumber.

Besides its text, an event carries typed fields that programs read instead of
parsing English: the ``recipient`` concerned, the server's ``reply``, the
``diagnosis`` (a stable :class:`~pop3gui.core.failures.Failure` name) and,
when it ends a message's handling, its ``outcome``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime, timezone
from enum import StrEnum

from pop3gui.core.failures import Failure


class Severity(enum.IntEnum):
    """Same numbers as :mod:`logging` levels, so the log file can use them."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


class EventId(enum.IntEnum):
    # Runs
    CYCLE_STARTED = 1001
    CYCLE_FINISHED = 1002
    ACCOUNT_STARTED = 1003
    ACCOUNT_FINISHED = 1004
    ACCOUNT_FAILED = 1005
    RUNNER_STOPPING = 1006
    RUNNER_BUSY = 1007
    RUNNER_SCHEDULE = 1008
    # Credentials and configuration
    CREDENTIAL_MISSING = 1101
    POLICY_WARNING = 1102
    SIGN_IN_FAILED = 1103
    # Alerts: the health conditions of [alerts], once when they start and once when they end
    ALERT_RAISED = 1201
    ALERT_RECOVERED = 1202
    ALERT_MAIL_FAILED = 1203
    ALERT_MAILED = 1204
    # The mailbox server (POP3 or IMAP; the POP3_ names are kept: ids are a contract)
    POP3_CONNECTED = 2001
    POP3_LOGIN_FAILED = 2002
    POP3_MAILBOX_IN_USE = 2003
    POP3_CONNECTION_FAILED = 2004
    POP3_TLS_FAILED = 2005
    POP3_TIMEOUT = 2006
    POP3_PROTOCOL_ERROR = 2007
    POP3_NO_UIDL = 2008
    POP3_QUIT_FAILED = 2009
    POP3_INSECURE_REFUSED = 2010
    POP3_COMMAND_FAILED = 2011
    TLS_NOT_VERIFIED = 2012
    # IMAP
    IMAP_FOLDER_RENUMBERED = 2013
    IMAP_NOT_EXPUNGED = 2014
    IMAP_IDLE_STARTED = 2015
    IMAP_NEW_MAIL = 2016
    IMAP_NO_IDLE = 2017
    IMAP_IDLE_FAILED = 2018
    # Messages
    MESSAGE_DOWNLOADED = 3001
    MESSAGE_DELIVERED = 3002
    MESSAGE_TOO_BIG = 3003
    DUPLICATE_SUPPRESSED = 3004
    FOREIGN_RECIPIENTS_DROPPED = 3005
    NO_LOCAL_RECIPIENT = 3006
    MESSAGE_DELETED = 3007
    MESSAGE_KEPT = 3008
    RESUBMITTING_INTERRUPTED = 3009
    MESSAGE_FAILED = 3010
    SPOOL_FAILED = 3011
    MAIL_LOOP = 3012
    MESSAGE_MOVED = 3013
    QUARANTINE_DELETED = 3014  # an admin deleted a quarantined message (Quarantine page or the command line)
    # Housekeeping: what the stores give up so they stay bounded
    EVENTS_PRUNED = 3015
    QUARANTINE_EXPIRED = 3016
    HOUSEKEEPING_FAILED = 3017
    # SMTP
    RECIPIENT_REFUSED = 4001
    RECIPIENT_DEFERRED = 4002
    DIVERTED_TO_UNDELIVERABLE = 4003
    QUARANTINED = 4004
    SMTP_CONNECTION_FAILED = 4005
    SMTP_AUTH_FAILED = 4006
    MESSAGE_REFUSED = 4007
    MESSAGE_DEFERRED = 4008


class Outcome(StrEnum):
    """How a message's handling ended in this cycle; stable names, like :class:`Failure`'s."""

    DELIVERED = "delivered"  # every intended recipient took it
    DIVERTED = "diverted"  # sent to the undeliverable mailbox with a notice
    QUARANTINED = "quarantined"  # kept here for the admin
    DEFERRED = "deferred"  # stays on the mail server; retried next cycle
    LEFT_ON_SERVER = "left_on_server"  # not downloaded (too big) or kept by rule
    SUPPRESSED = "suppressed"  # a copy already delivered: not sent again


@dataclass(frozen=True)
class Reply:
    """A server's reply as it was given: ``550``, ``5.7.1``, ``Unable to relay``."""

    code: int
    enhanced: str = ""
    text: str = ""

    def __str__(self) -> str:
        return " ".join(part for part in (str(self.code), self.enhanced, self.text) if part)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Event:
    """One thing that happened; rendered as it is by the CLI, the log and the GUI."""

    id: EventId
    severity: Severity
    text: str
    account: str = ""
    uid: str = ""
    message_id: str = ""
    subject: str = ""
    cause: str = ""
    fix: str = ""
    transcript: str = ""
    recipient: str = ""
    reply: Reply | None = None
    diagnosis: Failure | None = None
    outcome: Outcome | None = None
    time: datetime = field(default_factory=_now)
    seq: int = 0  # assigned by the event store; 0 until stored

    def one_line(self) -> str:
        who = f" [{self.account}]" if self.account else ""
        return f"{self.time.astimezone():%Y-%m-%d %H:%M:%S} {self.severity.name:<7} {int(self.id)}{who} {self.text}"

    def full_text(self) -> str:
        """Everything about the event, for a log file, a terminal or a detail pane."""
        lines = [self.one_line()]
        if self.subject or self.message_id or self.uid:
            lines.append(f"  Message: {self.subject!r} Message-ID {self.message_id or '-'} UIDL {self.uid or '-'}")
        if self.recipient:
            lines.append(f"  Recipient: {self.recipient}")
        if self.reply is not None:
            lines.append(f"  Reply: {self.reply}")
        if self.diagnosis is not None:
            lines.append(f"  Diagnosis: {self.diagnosis}")
        if self.outcome is not None:
            lines.append(f"  Outcome: {self.outcome}")
        if self.cause:
            lines.append(f"  Cause: {self.cause}")
        if self.fix:
            lines.append(f"  Fix: {self.fix}")
        if self.transcript:
            lines.append("  Transcript:")
            lines.extend("    " + line for line in self.transcript.splitlines())
        return "\n".join(lines)


def event_record(event: Event) -> dict[str, Any]:
    """One event as plain data: ``pop3gui events --json`` and the GUI's export write exactly this.

    The field names are a contract (docs/events.md).  ``reply`` is an object
    ``{code, enhanced, text}`` or null; ``diagnosis`` and ``outcome`` are
    stable names or null; ``seq`` is 0 for an event not read back from the store.
    """
    reply = event.reply
    return {
        "seq": event.seq, "time": event.time.isoformat(), "id": int(event.id),
        "severity": event.severity.name.lower(), "account": event.account, "uid": event.uid,
        "message_id": event.message_id, "subject": event.subject, "text": event.text,
        "recipient": event.recipient,
        "reply": None if reply is None else {"code": reply.code, "enhanced": reply.enhanced, "text": reply.text},
        "diagnosis": None if event.diagnosis is None else str(event.diagnosis),
        "outcome": None if event.outcome is None else str(event.outcome),
        "cause": event.cause, "fix": event.fix, "transcript": event.transcript,
    }


EventSink = Callable[[Event], None]
_log = logging.getLogger(__name__)


class EventBus:
    """Fans events out to the store, the log and any live view (the GUI bridge)."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink)

    def emit(self, event: Event) -> Event:
        """Deliver to every sink in order.

        A sink that fails (a full disk under the log or the store) is reported
        and skipped: the others still get the event, and the mail run that
        emitted it goes on -- the message's outcome must not depend on a log.
        """
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - one broken sink must not stop delivery
                _log.exception("an event sink failed on event %d (%s)", int(event.id), event.text[:200])
        return event
