"""What becomes of mail the local server refuses: diverted, quarantined, deferred, never dropped.

Runs the real Connector against the scripted POP3 server and the SMTP sink
(tests/support/rig.py); the sink's ``rcpt`` knob words the refusals.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from pop3gui.core.engine.cycle import Connector
from pop3gui.core.events.model import EventBus, EventId, Outcome, Reply
from pop3gui.core.failures import Failure
from pop3gui.core.smtp.data import MessageSource
from pop3gui.core.smtp.submit import SmtpSubmitter, Submission
from tests.support.rig import ADMIN, ALICE, BOB, CAROL, POP3_PASSWORD, StaticPasswords, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import Received, SmtpSink

UNKNOWN = "550 5.1.1 <alice@contoso.com>: Recipient address rejected: User unknown in virtual mailbox table"
UNCLEAR = "550 Invalid recipient"
ERIN = "erin@contoso.eu"


class CountedReplies(dict[str, str]):
    """The sink's ``rcpt`` knob, counting how often the server is asked for each postmaster@."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in replies.items()})
        self.postmaster: list[str] = []

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if key.startswith("postmaster@"):
            self.postmaster.append(key)
        return super().get(key, default)


def notice_parts(received: Received) -> tuple[str, bytes]:
    """The notice's text, and the attached message exactly as it travelled."""
    parsed = email.message_from_bytes(received.content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage) and parsed.get_content_type() == "multipart/mixed"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/rfc822"]
    text = parts[0].get_content()
    assert isinstance(text, str)
    boundary = parsed.get_boundary()
    assert boundary
    content = received.content
    start = content.index(b"Content-Type: message/rfc822")
    start = content.index(b"\r\n\r\n", start) + 4
    end = content.rindex(b"--" + boundary.encode() + b"--")
    return text, content[start:end]


async def test_a_refusal_goes_to_the_undeliverable_mailbox_with_a_notice_and_the_original(
        tmp_path: Path) -> None:
    original = message("quarterly figures", body="Figures attached.\r\n.hidden dot line\r\n..two dots\r\n")
    async with SmtpSink(rcpt={ALICE: UNKNOWN}) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        result = await rig.cycle()

        assert pop.mailbox == [], "diverted is handled: the server copy goes"
    assert result.accounts[0].diverted == 1 and result.exit_code == 1
    assert sink.copies_for(ALICE) == 0
    [notice] = sink.received
    assert notice.rcpt_tos == (ADMIN,) and notice.mail_from.strip("<>") == "", "sent from the null sender"
    diverted = rig.one(EventId.DIVERTED_TO_UNDELIVERABLE)
    assert diverted.outcome is Outcome.DIVERTED and diverted.diagnosis is Failure.UNKNOWN_USER
    assert diverted.recipient == ALICE and diverted.reply == Reply(550, "5.1.1", UNKNOWN[10:])
    text, attached = notice_parts(notice)
    assert f"  - {ALICE}: {UNKNOWN}" in text
    assert f"Cause: {diverted.cause}" in text and f"Fix:   {diverted.fix}" in text
    assert ALICE in diverted.cause and "mailbox" in diverted.cause
    assert attached == original, "the original travels unchanged, behind no trace line of ours"
    assert rig.quarantined() == []


async def test_the_undeliverable_mailbox_refusing_too_quarantines_the_message(tmp_path: Path) -> None:
    original = message("nobody wants it")
    async with SmtpSink(rcpt={ALICE: UNKNOWN, ADMIN: "550 5.7.1 <admin@contoso.com>: Relay access denied"}
                        ) as sink, ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        result = await rig.cycle()

        assert pop.mailbox == [], "quarantined is handled: the server copy goes"
    assert result.accounts[0].quarantined == 1 and result.accounts[0].diverted == 0
    assert sink.received == []
    quarantined = rig.one(EventId.QUARANTINED)
    assert quarantined.outcome is Outcome.QUARANTINED and quarantined.diagnosis is Failure.UNKNOWN_USER
    assert quarantined.recipient == ALICE and quarantined.cause and quarantined.fix
    assert not rig.of(EventId.DIVERTED_TO_UNDELIVERABLE)
    folder = rig.paths.quarantine_dir
    [eml] = sorted(folder.glob("*.eml"))
    assert eml.with_suffix(".json").is_file()
    [(kept, meta)] = rig.quarantined()
    assert kept == original
    assert meta["recipients"] == [ALICE] and meta["uid"] == quarantined.uid
    assert f"the undeliverable mailbox {ADMIN} refused it too" in str(meta["reason"])
    assert meta["cause"] == quarantined.cause and meta["fix"] == quarantined.fix


async def test_without_an_undeliverable_mailbox_a_refused_message_is_quarantined(tmp_path: Path) -> None:
    original = message("no place for it")
    async with SmtpSink(rcpt={ALICE: UNKNOWN}) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.undeliverable_to = ""

        result = await rig.cycle()

        assert pop.mailbox == []
    assert result.accounts[0].quarantined == 1
    assert sink.received == [] and sink.copies_for(ADMIN) == 0
    quarantined = rig.one(EventId.QUARANTINED)
    assert quarantined.outcome is Outcome.QUARANTINED and quarantined.diagnosis is Failure.UNKNOWN_USER
    [(kept, meta)] = rig.quarantined()
    assert kept == original
    assert str(meta["reason"]) == f"The local mail server refused: {ALICE}: {UNKNOWN}"


async def test_a_deferral_keeps_the_message_and_spares_the_accepted_recipient_a_second_copy(
        tmp_path: Path, sink: SmtpSink) -> None:
    original = message("for three", to=f"{ALICE}, {BOB}", cc=CAROL)
    sink.rcpt = {BOB: "451 4.3.0 Temporary lookup failure", CAROL: "452 4.2.2 Mailbox full"}
    async with ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, kind="global", deliver_to="")

        result = await rig.cycle()

        assert pop.mailbox == [original], "a deferred message stays on the POP3 server"
        assert not any(c.startswith("DELE") for c in pop.commands)
        assert result.accounts[0].deferred == 1 and result.exit_code == 1
        deferrals = rig.of(EventId.RECIPIENT_DEFERRED)
        assert [e.recipient for e in deferrals] == [BOB, CAROL]
        assert [e.outcome for e in deferrals] == [None, Outcome.DEFERRED]
        assert all(e.diagnosis is Failure.TEMPORARY for e in deferrals)
        assert deferrals[1].reply == Reply(452, "4.2.2", "Mailbox full")
        assert [e for e in rig.events if e.outcome is not None] == [deferrals[1]]
        assert sink.copies_for(ALICE) == 1 and sink.copies_for(BOB) == 0 and sink.copies_for(CAROL) == 0

        sink.rcpt = {}
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
    assert sink.copies_for(BOB) == 1 and sink.copies_for(CAROL) == 1
    assert sink.copies_for(ALICE) == 1, "the recipient accepted the first time is not sent it again"
    assert [r.rcpt_tos for r in sink.received][-1] == (BOB, CAROL)


async def test_an_unclear_refusal_is_settled_by_one_postmaster_probe_per_domain(tmp_path: Path,
                                                                               sink: SmtpSink) -> None:
    """Alice and Bob (contoso.com) and Erin (contoso.eu) are all refused in words that do not say why."""
    sink.rcpt = replies = CountedReplies({ALICE: UNCLEAR, BOB: UNCLEAR, ERIN: UNCLEAR,
                                          "postmaster@contoso.eu": "550 5.7.1 Relay access denied"})
    mails = [message("one", to=f"{ALICE}, {BOB}"), message("two", to=ERIN)]
    async with ScriptedPop3Server(mails, password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, kind="global", deliver_to="")
        rig.local_domains = ("contoso.com", "contoso.eu")

        result = await rig.cycle()

    assert result.accounts[0].diverted == 2
    assert sorted(replies.postmaster) == ["postmaster@contoso.com", "postmaster@contoso.eu"]
    refused = {e.recipient: e for e in rig.of(EventId.RECIPIENT_REFUSED)}
    assert set(refused) == {ALICE, BOB, ERIN}
    assert refused[ALICE].diagnosis is Failure.UNKNOWN_USER and refused[BOB].diagnosis is Failure.UNKNOWN_USER
    assert "postmaster@contoso.com" in refused[BOB].cause, "the second refusal is settled by the same answer"
    assert refused[ERIN].diagnosis is Failure.DOMAIN_NOT_ACCEPTED
    assert "postmaster@contoso.eu" in refused[ERIN].cause


async def test_messages_refused_side_by_side_share_one_postmaster_probe(
        tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both messages are refused before the first probe is answered; the domain is still asked about once.

    The real submitter runs unchanged; the probe only starts once both messages'
    submissions have returned, so the two deliveries overlap the same way every run.
    """
    sink.rcpt = replies = CountedReplies({ALICE: UNCLEAR})
    submitted = 0
    both_submitted = asyncio.Event()
    real_submit, real_probe = SmtpSubmitter.submit, SmtpSubmitter.takes_postmaster

    async def submit(self: SmtpSubmitter, sender: str, recipients: list[str],
                     message: bytes | MessageSource) -> Submission:
        nonlocal submitted
        try:
            return await real_submit(self, sender, recipients, message)
        finally:
            if recipients == [ALICE]:
                submitted += 1
                if submitted == 2:
                    both_submitted.set()

    async def takes_postmaster(self: SmtpSubmitter, domain: str) -> bool | None:
        await both_submitted.wait()
        return await real_probe(self, domain)

    monkeypatch.setattr(SmtpSubmitter, "submit", submit)
    monkeypatch.setattr(SmtpSubmitter, "takes_postmaster", takes_postmaster)
    async with ScriptedPop3Server([message("one"), message("two")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert rig.config.performance.smtp_connections >= 2, "one message per connection, side by side"

        result = await rig.cycle()

    assert result.accounts[0].diverted == 2 and submitted == 2
    assert all(e.diagnosis is Failure.UNKNOWN_USER for e in rig.of(EventId.RECIPIENT_REFUSED))
    assert replies.postmaster == ["postmaster@contoso.com"]


async def test_the_postmaster_question_is_asked_again_next_cycle(tmp_path: Path, sink: SmtpSink) -> None:
    """The admin may fix the server between cycles: one connector asks afresh every cycle."""
    sink.rcpt = replies = CountedReplies({ALICE: UNCLEAR, "postmaster@contoso.com": UNCLEAR})
    async with ScriptedPop3Server([message("first")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        bus = EventBus()
        bus.subscribe(rig.events.append)
        connector = Connector(rig.config, rig.paths, bus, credentials=StaticPasswords())  # type: ignore[arg-type]
        try:
            await connector.run_cycle()
            del replies["postmaster@contoso.com"]  # the domain is accepted now; Alice still has no mailbox
            pop.add(message("second"))
            await connector.run_cycle()
        finally:
            connector.close()

    assert replies.postmaster == ["postmaster@contoso.com"] * 2
    first, second = rig.of(EventId.RECIPIENT_REFUSED)
    assert first.diagnosis is Failure.DOMAIN_NOT_ACCEPTED and second.diagnosis is Failure.UNKNOWN_USER
    assert first.subject == "first" and second.subject == "second"

