"""How the engine speaks: the reply as events carry it, DEBUG events on request, an account's failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.report import Reporter, server_reply
from pop3gui.core.engine.status import AccountResult
from pop3gui.core.errors import MailboxAuthError, MailboxTimeoutError
from pop3gui.core.events.model import Event, EventBus, EventId, Outcome, Reply, Severity
from pop3gui.core.failures import Failure


def reporter(*, debug: bool = False) -> tuple[Reporter, list[Event]]:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    return Reporter(bus, debug=debug), seen


@pytest.mark.parametrize("code, message, reply", [
    (550, "5.7.1 Unable to relay", Reply(550, "5.7.1", "Unable to relay")),
    (550, "  5.1.1   <bob@contoso.com>: User unknown ", Reply(550, "5.1.1", "<bob@contoso.com>: User unknown")),
    (452, "4.2.2 Mailbox full", Reply(452, "4.2.2", "Mailbox full")),
    (550, "Invalid recipient", Reply(550, "", "Invalid recipient")),
    (553, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
     Reply(553, "", "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)")),
    (550, "", Reply(550, "", "")),
], ids=["status-and-text", "blanks", "deferral", "no-status", "status-later-in-text", "empty"])
def test_server_reply_splits_the_status_code_from_the_words(code: int, message: str, reply: Reply) -> None:
    assert server_reply(code, message) == reply


def test_debug_events_are_dropped_unless_asked_for() -> None:
    quiet, quiet_seen = reporter()
    chatty, chatty_seen = reporter(debug=True)
    for report in (quiet, chatty):
        report.event(EventId.MESSAGE_DOWNLOADED, Severity.DEBUG, "Downloaded 120 bytes.", account="alice")
        report.event(EventId.MESSAGE_DELIVERED, Severity.INFO, "Delivered.", account="alice")
    assert [e.id for e in quiet_seen] == [EventId.MESSAGE_DELIVERED]
    assert [e.id for e in chatty_seen] == [EventId.MESSAGE_DOWNLOADED, EventId.MESSAGE_DELIVERED]


def test_an_event_names_the_message_and_carries_the_typed_fields(tmp_path: Path) -> None:
    report, seen = reporter()
    msg = InFlight(3, "uid-3", 120, tmp_path / "uid-3.eml", message_id="<m@x>", subject="Figures")
    reply = Reply(550, "5.7.1", "Unable to relay")
    report.event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "Refused.", account="alice", msg=msg,
                 cause="c", fix="f", transcript="t", recipient="erin@contoso.eu", reply=reply,
                 diagnosis=Failure.DOMAIN_NOT_ACCEPTED, outcome=Outcome.DIVERTED)
    [event] = seen
    assert (event.account, event.uid, event.message_id, event.subject) == ("alice", "uid-3", "<m@x>", "Figures")
    assert (event.cause, event.fix, event.transcript) == ("c", "f", "t")
    assert event.recipient == "erin@contoso.eu" and event.reply == reply
    assert event.diagnosis is Failure.DOMAIN_NOT_ACCEPTED and event.outcome is Outcome.DIVERTED


def test_a_failure_is_recorded_on_the_result_and_said_with_its_diagnosis() -> None:
    report, seen = reporter()
    res = AccountResult("alice")
    login = MailboxAuthError("the POP3 server refused the login", cause="Wrong password.", fix="Set it again.")
    stalled = MailboxTimeoutError("the POP3 server stopped answering", cause="It stalled.", fix="Wait.")

    report.failure(res, EventId.POP3_LOGIN_FAILED, login, transcript="USER alice\n-ERR no")
    report.failure(res, EventId.POP3_TIMEOUT, stalled)

    assert res.failed and not res.clean
    assert (res.diagnosis, res.cause, res.fix) == (Failure.AUTH_FAILED, "Wrong password.", "Set it again.")
    assert res.errors == [str(login), str(stalled)]
    first, second = seen
    assert first.id is EventId.POP3_LOGIN_FAILED and first.severity is Severity.ERROR
    assert first.account == "alice" and first.text == str(login)
    assert (first.cause, first.fix, first.transcript) == ("Wrong password.", "Set it again.", "USER alice\n-ERR no")
    assert first.diagnosis is Failure.AUTH_FAILED and first.outcome is None
    assert second.id is EventId.POP3_TIMEOUT and second.diagnosis is Failure.TIMEOUT
