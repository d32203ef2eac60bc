"""The cycle as its drivers see it: account status, cycle results, typed event fields, setup failures.

Runs the real Connector against the scripted POP3 server and the SMTP sink
(tests/support/rig.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from pop3gui.core.engine.status import Phase
from pop3gui.core.events.model import EventId, Outcome, Reply
from pop3gui.core.failures import Failure
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.events.model import EventBus
from tests.support.rig import ADMIN, ALICE, BOB, POP3_PASSWORD, StaticPasswords, StatusLog, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import SmtpSink, unused_port


async def test_the_observer_follows_an_account_from_connecting_to_done(tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedPop3Server([message("one"), message("two")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.observer = seen = StatusLog()

        result = await rig.cycle()

    phases = [s.phase for s in seen.statuses]
    assert phases[0] is Phase.CONNECTING and phases[-1] is Phase.DONE
    assert Phase.DOWNLOADING in phases and Phase.DELIVERING in phases
    progress = [(s.done, s.total) for s in seen.statuses if s.phase in (Phase.DOWNLOADING, Phase.DELIVERING)]
    assert progress[0] == (0, 2) and progress[-1] == (2, 2)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    done = seen.statuses[-1]
    assert done.account == "alice" and done.result is not None and done.result.delivered == 2
    assert seen.cycles == [result] and result.exit_code == 0


async def test_a_failed_account_is_published_with_its_diagnosis(tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedPop3Server([message("kept")], password="another password") as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.observer = seen = StatusLog()

        await rig.cycle()

    last = seen.statuses[-1]
    assert last.phase is Phase.FAILED and last.result is not None
    assert last.result.diagnosis is Failure.AUTH_FAILED and last.result.cause and last.result.fix
    assert rig.one(EventId.POP3_LOGIN_FAILED).diagnosis is Failure.AUTH_FAILED


async def test_events_carry_recipient_reply_diagnosis_and_outcome(tmp_path: Path) -> None:
    refusal = "550 5.7.1 Unable to relay for erin@contoso.eu"
    async with SmtpSink(rcpt={"erin@contoso.eu": refusal}) as sink, \
            ScriptedPop3Server([message("hello", to=ALICE), message("welcome", to="erin@contoso.eu")],
                               password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, kind="global", deliver_to="")
        rig.local_domains = ("contoso.com", "contoso.eu")  # a policy covers it: only the server refuses

        await rig.cycle()

    delivered = rig.one(EventId.MESSAGE_DELIVERED)
    assert delivered.recipient == ALICE and delivered.outcome is Outcome.DELIVERED and delivered.diagnosis is None
    refused = rig.one(EventId.RECIPIENT_REFUSED)
    assert refused.recipient == "erin@contoso.eu"
    assert refused.reply == Reply(550, "5.7.1", "Unable to relay for erin@contoso.eu")
    assert refused.diagnosis is Failure.DOMAIN_NOT_ACCEPTED and refused.outcome is None
    diverted = rig.one(EventId.DIVERTED_TO_UNDELIVERABLE)
    assert diverted.outcome is Outcome.DIVERTED and diverted.diagnosis is Failure.DOMAIN_NOT_ACCEPTED
    assert diverted.recipient == "erin@contoso.eu" and sink.copies_for(ADMIN) == 1
    # Exactly one event ends each message's handling.
    assert sorted(e.subject for e in rig.events if e.outcome is not None) == ["hello", "welcome"]


async def test_a_missing_account_ca_file_fails_that_account_before_connecting(tmp_path: Path,
                                                                             sink: SmtpSink) -> None:
    missing = tmp_path / "no-such-ca.pem"
    async with ScriptedPop3Server([message("kept")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, security="tls", ca_file=str(missing))

        result = await rig.cycle()

        assert pop.commands == []
    assert result.exit_code == 1 and result.accounts[0].diagnosis is Failure.TLS_FAILED
    event = rig.one(EventId.POP3_TLS_FAILED)
    assert str(missing) in event.text and event.cause and event.fix and event.diagnosis is Failure.TLS_FAILED


async def test_a_missing_smtp_ca_file_stops_the_cycle_before_any_mail_flows(tmp_path: Path,
                                                                           sink: SmtpSink) -> None:
    missing = tmp_path / "no-such-ca.pem"
    original = message("kept")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.smtp_security, rig.smtp_ca_file = "starttls", str(missing)

        result = await rig.cycle()

        assert pop.commands == [] and pop.mailbox == [original]
    assert sink.connections == 0
    assert result.exit_code == 1 and result.accounts[0].diagnosis is Failure.TLS_FAILED
    event = rig.one(EventId.SMTP_CONNECTION_FAILED)
    assert str(missing) in event.text and event.fix


async def test_every_message_the_lost_local_server_could_not_take_ends_with_one_outcome(tmp_path: Path) -> None:
    """Parallel SMTP sessions fail together: the cause is said once, each message's deferral still is."""
    async with ScriptedPop3Server([message("one"), message("two"), message("three")],
                                  password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, unused_port())

        result = await rig.cycle()

        assert len(pop.mailbox) == 3
    res = result.accounts[0]
    assert res.failed and res.deferred >= 1 and res.errors == [res.errors[0]]
    ended = Counter(e.uid for e in rig.events if e.outcome is not None)
    assert sum(ended.values()) == res.deferred and set(ended.values()) == {1}
    assert {e.outcome for e in rig.events if e.outcome is not None} == {Outcome.DEFERRED}
    assert len(rig.of(EventId.SMTP_CONNECTION_FAILED)) == 1


async def test_a_resubmission_is_sent_even_when_the_pop3_copy_awaits_its_deletion(tmp_path: Path) -> None:
    """A quarantined message whose DELE the server never committed: its resubmission must still be sent."""
    original = message("important", to=ALICE)
    async with ScriptedPop3Server([original], password=POP3_PASSWORD,
                                  replies={"QUIT": ["-ERR [SYS/TEMP] cannot commit now"]}) as pop:
        async with SmtpSink(rcpt={ALICE: "550 5.1.1 <alice@contoso.com>: User unknown"}) as refusing:
            rig = make_rig(tmp_path, pop, refusing.port)
            rig.undeliverable_to = ""
            first = await rig.cycle()
        assert first.accounts[0].quarantined == 1 and pop.mailbox == [original]  # QUIT did not commit the DELE
        [(_, record)] = rig.quarantined()

        async with SmtpSink() as fixed:
            rig.smtp_port = fixed.port
            connector = Connector(rig.config, rig.paths, EventBus(), credentials=StaticPasswords())
            try:
                answer = await connector.resubmit(str(record["id"]))
            finally:
                connector.close()
            assert answer == "Delivered." and fixed.copies_for(ALICE) == 1 and rig.quarantined() == []

            second = await rig.cycle()  # the POP3 copy is recognised as handled: deleted, not sent again

            assert second.accounts[0].deleted == 1 and pop.mailbox == [] and fixed.copies_for(ALICE) == 1


async def test_a_message_every_recipient_already_has_ends_with_a_kept_event(tmp_path: Path) -> None:
    """At the default level too: the event that ends a message's handling is never a dropped debug one."""
    news = message("team news", to=f"{BOB}, {ALICE}")
    async with ScriptedPop3Server([news], password=POP3_PASSWORD) as office, \
            ScriptedPop3Server([news], password=POP3_PASSWORD) as bobs:
        rig = make_rig(tmp_path, office, 0, kind="global", deliver_to="")
        rig.log_level = "info"
        global_account = rig.account
        async with SmtpSink(rcpt={BOB: "451 4.3.0 try later"}) as sink:
            rig.smtp_port = sink.port
            await rig.cycle()  # alice takes it, bob is deferred: the message stays
        async with SmtpSink() as sink:
            rig.smtp_port = sink.port
            rig.account = replace(global_account, name="bob", port=bobs.port, kind="user", deliver_to=BOB)
            await rig.cycle()  # bob's own mailbox brings him the same message
            rig.account = global_account

            last = await rig.cycle()  # the retry finds both recipients served

            assert sink.copies_for(BOB) == 1 and sink.copies_for(ALICE) == 0
    assert last.accounts[0].deleted == 1
    [ended] = [e for e in rig.cycle_events if e.outcome is not None]
    assert ended.id == EventId.DUPLICATE_SUPPRESSED and ended.outcome is Outcome.SUPPRESSED
