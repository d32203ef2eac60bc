"""How the engine speaks: events on the bus, status to its observer.

Every part of the engine reports through one :class:`Reporter`, so an event
always carries the message's identity and the typed fields (recipient, reply,
diagnosis, outcome) the same way, and per-step DEBUG events cost nothing
unless the admin asked for them.
"""

from __future__ import annotations

from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.status import AccountResult, AccountStatus, CycleResult, Phase, StatusObserver
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.events.model import Event, EventBus, EventId, Outcome, Reply, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.smtp.diagnose import enhanced_status


class Reporter:
    """Emits the engine's events and publishes its status."""

    def __init__(self, bus: EventBus, *, debug: bool = False, observer: StatusObserver | None = None) -> None:
        self.bus = bus
        self.debug = debug
        self.observer = observer

    def event(self, eid: EventId, severity: Severity, text: str, *, account: str = "",
              msg: InFlight | None = None, cause: str = "", fix: str = "", transcript: str = "",
              recipient: str = "", reply: Reply | None = None, diagnosis: Failure | None = None,
              outcome: Outcome | None = None) -> None:
        if severity == Severity.DEBUG and not self.debug:
            return  # per-step detail costs a row per message; only kept when the admin asks for it
        self.bus.emit(Event(
            id=eid, severity=severity, text=text, account=account,
            uid=msg.uid if msg else "", message_id=msg.message_id if msg else "",
            subject=msg.subject if msg else "", cause=cause, fix=fix, transcript=transcript,
            recipient=recipient, reply=reply, diagnosis=diagnosis, outcome=outcome,
        ))

    def failure(self, res: AccountResult, eid: EventId, exc: Pop3guiError, *, transcript: str = "") -> None:
        """The account's cycle failed with *exc*: record it and say so."""
        res.fail(str(exc), diagnosis=exc.failure, cause=exc.cause, fix=exc.fix)
        self.event(eid, Severity.ERROR, str(exc), account=res.account, cause=exc.cause, fix=exc.fix,
                   transcript=transcript, diagnosis=exc.failure)

    def status(self, account: str, phase: Phase, result: AccountResult | None = None) -> None:
        if self.observer is not None:
            self.observer.on_account_status(AccountStatus(account, phase, result=result))

    def cycle_finished(self, result: CycleResult) -> None:
        if self.observer is not None:
            self.observer.on_cycle_finished(result)


def server_reply(code: int, message: str) -> Reply:
    """A reply as the events carry it: code, RFC 3463 status, and the words after it."""
    enhanced = enhanced_status(message)
    text = message.strip()
    if enhanced:
        text = text[len(enhanced):].strip() if text.startswith(enhanced) else text
    return Reply(code, enhanced, text)
