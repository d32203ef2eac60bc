"""The Connector against servers that fail on purpose.

The real Dovecot and Postfix (tests/integration) behave; here a scripted POP3
server (tests/support/scripted_pop3.py) and a recording aiosmtpd server
(tests/support/smtp_sink.py) drop connections, stall, lie, defer and refuse.

Every test states what the user must see (the event id, with a cause and a fix
in plain words) and checks the promise: nothing is lost (the message is still
in the POP3 mailbox unless it was delivered, diverted or quarantined) and
nothing is delivered twice (the one documented exception says why).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Callable
from pathlib import Path

import pytest

from pop3gui.core.engine import delivery
from pop3gui.core.mail import recipients
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.state.spool import Spool
from pop3gui.core.engine.cycle import Connector
from tests.support.rig import ADMIN, ALICE, BOB, CAROL, POP3_PASSWORD, Rig, StaticPasswords, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import SmtpSink, unused_port



def explained(event: Event, *words: str) -> None:
    """The event tells the user why and what to do, naming the given words."""
    assert event.cause.strip() and event.fix.strip(), event.full_text()
    assert len(event.cause.split()) >= 4 and len(event.fix.split()) >= 4, event.full_text()
    text = f"{event.text}\n{event.cause}\n{event.fix}".lower()
    for word in words:
        assert word.lower() in text, f"{word!r} missing from:\n{event.full_text()}"


def no_password_anywhere(rig: Rig) -> None:
    """Neither the POP3 password nor its AUTH PLAIN token reaches an event."""
    import base64

    token = base64.b64encode(f"\0user\0{rig.passwords.pop3}".encode()).decode()
    for event in rig.events:
        text = event.full_text()
        assert rig.passwords.pop3 not in text and token not in text, text


def carries(received_content: bytes, original: bytes) -> bool:
    """The local server got the original bytes, behind our one Received: trace line."""
    return received_content.startswith(b"Received: ") and received_content.endswith(original)


def delivered_originals(sink: SmtpSink, *originals: bytes) -> list[bytes]:
    """Which of *originals* the sink received, one entry per received message, sorted.

    Sorted because messages of one mailbox go out over parallel SMTP
    connections (performance.smtp_connections), so their order is not fixed.
    """
    return sorted(m for r in sink.received for m in originals if carries(r.content, m))


# --- POP3 faults ---------------------------------------------------------------


async def test_connection_dropped_mid_retr_keeps_the_message_and_the_next_cycle_delivers_it_once(
        tmp_path: Path, sink: SmtpSink) -> None:
    original = message("dropped")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, drop_retr=(1, 40)) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        result = await rig.cycle()

        assert result.exit_code == 1 and result.accounts[0].failed
        explained(rig.one(EventId.POP3_CONNECTION_FAILED), "closed the connection", "retried")
        finished = rig.one(EventId.ACCOUNT_FINISHED)
        assert finished.severity == Severity.WARNING
        assert pop.mailbox == [original]
        assert sink.received == []
        assert rig.spool_is_empty(), "the partial download must not linger"

        pop.drop_retr = None
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        assert sink.copies_for(ALICE) == 1
        assert carries(sink.received[0].content, original)


@pytest.mark.parametrize("fault, failure", [
    ("no reply to QUIT", EventId.POP3_TIMEOUT),
    ("-ERR to QUIT", EventId.POP3_COMMAND_FAILED),
], ids=["stall", "err"])
async def test_session_lost_before_quit_rolls_back_and_the_next_cycle_deletes_without_redelivering(
        tmp_path: Path, sink: SmtpSink, fault: str, failure: EventId) -> None:
    """The DELE was sent but QUIT never completed, so the server keeps the message.

    "no reply to QUIT": the server reads QUIT and never answers (the client
    gives up after timeout_s and drops the connection), which is what a
    connection lost right before QUIT looks like to both sides.
    """
    original = message("handled, not yet deleted")
    knobs: dict[str, object] = (
        {"stall": {"QUIT"}} if fault == "no reply to QUIT"
        else {"replies": {"QUIT": ["-ERR [SYS/TEMP] cannot commit the mailbox"]}})
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, **knobs) as pop:  # type: ignore[arg-type]
        rig = make_rig(tmp_path, pop, sink.port, timeout_s=0.5)

        assert (await rig.cycle()).exit_code == 1
        assert "DELE 1" in pop.commands and "QUIT" in pop.commands
        assert pop.mailbox == [original], "without a completed QUIT the server rolls the DELE back"
        assert sink.copies_for(ALICE) == 1
        explained(rig.one(failure))
        explained(rig.one(EventId.POP3_QUIT_FAILED), "quit", "without being delivered again")

        pop.stall = set()
        pop.commands.clear()
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        # Downloaded once more: after a DELE whose QUIT is unknown, the UIDL may name a new message
        # (RFC 1939 lets a server reuse it), so the content decides; this one is the handled message.
        assert pop.commands.index("RETR 1") < pop.commands.index("DELE 1")
        assert sink.copies_for(ALICE) == 1, "the journal must stop a second delivery"
        assert not rig.of(EventId.MESSAGE_DELIVERED, this_cycle=True)
        assert not rig.of(EventId.DUPLICATE_SUPPRESSED, this_cycle=True)  # recognised as itself, not a copy


@pytest.mark.parametrize("reply, password, eid, words", [
    ("-ERR [IN-USE] mailbox locked by another session", POP3_PASSWORD, EventId.POP3_MAILBOX_IN_USE,
     ("another mail program", "retried")),
    ("-ERR [SYS/TEMP] backend unavailable", POP3_PASSWORD, EventId.POP3_COMMAND_FAILED,
     ("temporary", "retried")),
    (None, "not-the-password", EventId.POP3_LOGIN_FAILED, ("password", "user name")),
], ids=["in-use", "sys-temp", "wrong-password"])
async def test_login_refusals_are_explained_and_keep_the_mail(
        tmp_path: Path, sink: SmtpSink, reply: str | None, password: str, eid: EventId,
        words: tuple[str, ...]) -> None:
    original = message("waiting")
    replies: dict[str, str | list[str]] = {"AUTH": reply} if reply else {}
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, replies=replies) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.passwords = StaticPasswords(pop3=password)

        result = await rig.cycle()

        assert result.exit_code == 1
        event = rig.one(eid)
        assert event.severity == Severity.ERROR and event.account == "alice"
        explained(event, *words)
        assert pop.mailbox == [original]
        assert sink.connections == 0 and sink.received == []
        assert not any(c.startswith(("RETR", "DELE")) for c in pop.commands)
        no_password_anywhere(rig)


async def test_sys_temp_on_retr_keeps_every_message_for_the_next_cycle(tmp_path: Path, sink: SmtpSink) -> None:
    first, second = message("one"), message("two")
    async with ScriptedPop3Server([first, second], password=POP3_PASSWORD,
                                  replies={"RETR": ["-ERR [SYS/TEMP] storage busy, try later"]}) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 1
        explained(rig.one(EventId.POP3_COMMAND_FAILED), "temporary", "retried")
        assert pop.mailbox == [first, second]
        assert sink.received == []

        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        assert sink.copies_for(ALICE) == 2
        assert delivered_originals(sink, first, second) == sorted([first, second])


async def test_server_without_uidl_identifies_messages_by_header_hash(tmp_path: Path, sink: SmtpSink) -> None:
    first, second = message("one"), message("two")
    async with ScriptedPop3Server([first, second], password=POP3_PASSWORD, uidl=False) as pop:
        rig = make_rig(tmp_path, pop, sink.port, leave_on_server=True)

        assert (await rig.cycle()).exit_code == 0
        explained(rig.one(EventId.POP3_NO_UIDL), "uidl", "nothing to do")
        assert sink.copies_for(ALICE) == 2
        assert len(pop.mailbox) == 2  # leave_on_server
        assert any(c.startswith("TOP 1 0") for c in pop.commands)

        third = message("three")
        pop.add(third)
        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 3, "only the new message is delivered on the second cycle"
        assert sink.received[-1].content.endswith(third)
        assert len(rig.of(EventId.MESSAGE_DELIVERED, this_cycle=True)) == 1


async def test_the_same_uidl_twice_falls_back_to_header_hashes(tmp_path: Path, sink: SmtpSink) -> None:
    first, second = message("one"), message("two")
    async with ScriptedPop3Server([first, second], password=POP3_PASSWORD, uids=["dup", "dup"]) as pop:
        rig = make_rig(tmp_path, pop, sink.port, leave_on_server=True)

        assert (await rig.cycle()).exit_code == 0
        assert (await rig.cycle()).exit_code == 0

        assert sink.copies_for(ALICE) == 2, "two different messages: each delivered, neither twice"
        assert delivered_originals(sink, first, second) == sorted([first, second])
        assert len(pop.mailbox) == 2


async def test_server_that_stalls_on_retr_times_out_and_keeps_the_message(tmp_path: Path, sink: SmtpSink) -> None:
    original = message("slow")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, stall={"RETR"}) as pop:
        rig = make_rig(tmp_path, pop, sink.port, timeout_s=0.5)

        assert (await rig.cycle()).exit_code == 1
        event = rig.one(EventId.POP3_TIMEOUT)
        assert "0.5 s" in event.text
        explained(event, "stalled", "timeout")
        assert pop.mailbox == [original]
        assert sink.received == []
        assert rig.spool_is_empty()

        pop.stall = set()
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == [] and sink.copies_for(ALICE) == 1


async def test_list_size_that_understates_still_delivers_the_whole_message(tmp_path: Path, sink: SmtpSink) -> None:
    original = message("bigger than it says", body="line of text\r\n" * 200)
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, list_sizes=[10]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 1
        assert carries(sink.received[0].content, original), "RETR, not LIST, decides what is sent"
        assert pop.mailbox == []


async def test_list_size_that_overstates_keeps_the_message_with_one_event(tmp_path: Path, sink: SmtpSink) -> None:
    original = message("smaller than it says")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, list_sizes=[900 * 1024 * 1024]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 0
        assert (await rig.cycle()).exit_code == 0
        assert len(rig.of(EventId.MESSAGE_TOO_BIG)) == 1
        explained(rig.one(EventId.MESSAGE_TOO_BIG), "max_message_kb")
        assert pop.mailbox == [original]
        assert not any(c.startswith("RETR") for c in pop.commands)
        assert sink.received == []


# --- SMTP faults ---------------------------------------------------------------


async def test_local_server_down_keeps_the_mail_and_fails_the_run(tmp_path: Path) -> None:
    first, second = message("one"), message("two")
    async with ScriptedPop3Server([first, second], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, unused_port())

        result = await rig.cycle()

        assert result.exit_code == 1
        events = rig.of(EventId.SMTP_CONNECTION_FAILED)
        assert len(events) == 1, "the account stops at the first message: the rest would fail the same way"
        explained(events[0], "not running", "retried next cycle")
        assert pop.mailbox == [first, second]
        assert not any(c.startswith("DELE") for c in pop.commands)
        assert rig.spool_is_empty()


async def test_421_at_the_greeting_keeps_the_mail(tmp_path: Path) -> None:
    original = message("busy")
    async with SmtpSink(greeting_421=True) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 1
        event = rig.one(EventId.SMTP_CONNECTION_FAILED)
        assert "421" in event.text
        explained(event, "busy", "retried next cycle")
        assert pop.mailbox == [original]

        sink.greeting_421 = False
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == [] and sink.copies_for(ALICE) == 1


@pytest.mark.parametrize("deferral", ["451 4.3.0 Temporary lookup failure", "452 4.2.2 Mailbox full"])
async def test_recipient_deferred_stays_and_is_retried_without_a_second_copy_for_the_accepted_one(
        tmp_path: Path, sink: SmtpSink, deferral: str) -> None:
    """A global mailbox message for Alice and Bob; the server defers Bob the first time.

    Alice gets it in the first attempt (the journal records that), Bob in the
    second; Alice must not get a second copy then.
    """
    original = message("for two", to=f"Alice <{ALICE}>, Bob <{BOB}>")
    sink.rcpt = {BOB: deferral}
    async with ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, kind="global", deliver_to="")

        assert (await rig.cycle()).exit_code == 1
        event = rig.one(EventId.RECIPIENT_DEFERRED)
        assert BOB in event.text and deferral.split()[0] in event.text
        explained(event, "temporarily", "retried next cycle")
        assert f"RCPT TO:<{BOB}>" in event.transcript
        assert pop.mailbox == [original]
        assert sink.copies_for(ALICE) == 1 and sink.copies_for(BOB) == 0

        sink.rcpt = {}
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        assert sink.copies_for(BOB) == 1
        assert sink.copies_for(ALICE) == 1, "Alice was accepted in the first attempt"
        assert rig.of(EventId.DUPLICATE_SUPPRESSED, this_cycle=True)


async def test_a_deferred_message_is_not_reported_as_interrupted_on_retry(tmp_path: Path, sink: SmtpSink) -> None:
    original = message("deferred once")
    sink.rcpt = {ALICE: "451 4.3.0 Try again later"}
    async with ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        await rig.cycle()
        sink.rcpt = {}
        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 1
        assert not rig.of(EventId.RESUBMITTING_INTERRUPTED)


async def test_552_at_data_quarantines_the_original_when_the_notice_is_refused_too(
        tmp_path: Path) -> None:
    original = message("huge")
    async with SmtpSink(data="552 5.3.4 Message size exceeds fixed limit") as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 1
        refused = rig.one(EventId.MESSAGE_REFUSED)
        assert "552" in refused.text
        explained(refused, "size", "max_message_kb")
        explained(rig.one(EventId.QUARANTINED), "size")
        [(eml, meta)] = rig.quarantined()
        assert eml == original
        assert "552" in str(meta["reason"]) and ADMIN in str(meta["reason"])
        assert pop.mailbox == [], "quarantined is handled: the server copy may go"
        assert sink.received == []


async def test_554_for_one_of_three_recipients_delivers_the_others_and_notifies_the_admin(
        tmp_path: Path) -> None:
    original = message("team", to=f"{ALICE}, {BOB}", cc=CAROL)
    refusal = "554 5.7.1 <carol@contoso.com>: Relay access denied"
    async with SmtpSink(rcpt={CAROL: refusal}) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port, kind="global", deliver_to="")

        result = await rig.cycle()

        assert result.exit_code == 1 and result.accounts[0].diverted == 1
        assert sink.copies_for(ALICE) == 1 and sink.copies_for(BOB) == 1 and sink.copies_for(CAROL) == 0
        refused = rig.one(EventId.RECIPIENT_REFUSED)
        assert CAROL in refused.text and "5.7.1" in refused.text
        explained(refused, "relay", "accepted domains")
        explained(rig.one(EventId.DIVERTED_TO_UNDELIVERABLE), "relay")
        [notice] = [r for r in sink.received if r.rcpt_tos == (ADMIN,)]
        parsed = email.message_from_bytes(notice.content, policy=email.policy.default)
        assert "Undeliverable POP3 mail" in str(parsed["Subject"])
        assert b"5.7.1" in notice.content and CAROL.encode() in notice.content
        assert original in notice.content, "the original travels with the notice"
        assert pop.mailbox == []
        assert rig.quarantined() == []


async def test_connection_dropped_after_data_keeps_the_message_for_retry(tmp_path: Path) -> None:
    """The server took the data and dropped the line before its reply.

    The connector cannot know whether the message was accepted, so it keeps
    the POP3 copy and submits again next cycle: a possible duplicate is the
    accepted cost of never losing a message (what every MTA does too).  The
    test pins that cost to exactly one extra copy.
    """
    original = message("maybe accepted")
    async with SmtpSink(drop_after_data=True) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 1
        event = rig.one(EventId.SMTP_CONNECTION_FAILED)
        explained(event, "closed the connection", "twice")
        assert "DATA" in event.transcript
        assert pop.mailbox == [original]
        assert sink.copies_for(ALICE) == 1  # the server has it; the connector could not know

        sink.drop_after_data = False
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        assert sink.copies_for(ALICE) == 2
        explained(rig.one(EventId.RESUBMITTING_INTERRUPTED), "twice")


async def test_local_server_closing_the_session_between_messages_does_not_stop_the_mailbox(
        tmp_path: Path) -> None:
    """Postfix closes an idle session after smtpd_timeout; a slow RETR can take that long."""
    messages = [message("one"), message("two"), message("three")]
    async with SmtpSink(close_after_data=True) as sink, \
            ScriptedPop3Server(messages, password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 3 and sink.connections == 3
        assert pop.mailbox == []


async def test_undeliverable_mailbox_refused_too_quarantines_the_exact_original(tmp_path: Path) -> None:
    original = message("nobody takes it", body="Zeile mit Umlaut \u00e4\r\n.\r\n..leading dots\r\n")
    async with SmtpSink(rcpt={ALICE: "550 5.1.1 <alice@contoso.com>: Recipient address rejected: unknown",
                              ADMIN: "550 5.1.1 <admin@contoso.com>: Recipient address rejected: unknown"}
                        ) as sink, ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        assert (await rig.cycle()).exit_code == 1
        explained(rig.one(EventId.RECIPIENT_REFUSED), "no mailbox", ALICE)
        quarantined = rig.one(EventId.QUARANTINED)
        explained(quarantined, ALICE)
        [(eml, meta)] = rig.quarantined()
        assert eml == original
        reason = str(meta["reason"])
        assert "5.1.1" in reason and ALICE in reason and f"undeliverable mailbox {ADMIN} refused it too" in reason
        assert meta["recipients"] == [ALICE] and meta["cause"] and meta["fix"]
        assert pop.mailbox == []
        assert sink.received == []


# --- local disk ------------------------------------------------------------------


def _block_spool_root(rig: Rig) -> Callable[[Connector, Event], None] | None:
    rig.paths.state_dir.mkdir(parents=True, exist_ok=True)
    rig.paths.spool_dir.write_text("a file where the spool folder should be")
    return None


def _block_account_folder_mid_session(rig: Rig) -> Callable[[Connector, Event], None] | None:
    def hook(connector: Connector, event: Event) -> None:
        if event.id == EventId.POP3_CONNECTED:
            folder = connector.spool.folder("alice")
            folder.rmdir()
            folder.write_text("a file where the account's spool folder should be")
    return hook


def _undeletable_leftover(rig: Rig) -> Callable[[Connector, Event], None] | None:
    # As root, chmod cannot make a folder unwritable; a folder where a leftover
    # file is expected fails the same way (unlink raises, as EACCES would).
    folder = Spool(rig.paths.spool_dir).folder("alice")
    (folder / "leftover.eml").mkdir()
    return None


@pytest.mark.parametrize("block", [_block_spool_root, _block_account_folder_mid_session, _undeletable_leftover],
                         ids=["spool-is-a-file", "account-folder-replaced-mid-session", "undeletable-leftover"])
async def test_unwritable_spool_is_explained_and_keeps_the_mail(
        tmp_path: Path, sink: SmtpSink, block: Callable[[Rig], Callable[[Connector, Event], None] | None]) -> None:
    original = message("no room")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        hook = block(rig)

        result = await rig.cycle(hook)

        assert result.exit_code == 1
        explained(rig.one(EventId.SPOOL_FAILED), "spool", "writable", "pop3 server")
        assert pop.mailbox == [original]
        assert sink.received == []
        assert not any(c.startswith("DELE") for c in pop.commands)


# --- one bad message, and stopping ------------------------------------------------


async def test_a_message_id_the_stdlib_parser_chokes_on_is_still_delivered(
        tmp_path: Path, sink: SmtpSink) -> None:
    # The standard library's Message-ID parser raises IndexError on "<[>".
    odd = message("odd id", message_id="<[>")
    async with ScriptedPop3Server([odd], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 1 and sink.received[0].content.endswith(odd)
        assert rig.one(EventId.MESSAGE_DELIVERED).message_id == "<[>"


async def test_a_message_that_breaks_processing_is_quarantined_and_the_next_is_delivered(
        tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = message("bad header")
    good = message("fine")
    real_resolve = recipients.resolve_user
    calls = []

    def break_on_first_message(deliver_to: str) -> recipients.Resolution:
        calls.append(deliver_to)
        if len(calls) == 1:
            raise IndexError("a parser bug triggered by this message")
        return real_resolve(deliver_to)

    monkeypatch.setattr(delivery, "resolve_user", break_on_first_message)  # the name the deliverer calls
    async with ScriptedPop3Server([bad, good], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        result = await rig.cycle()

        assert result.accounts[0].quarantined == 1 and result.accounts[0].delivered == 1
        explained(rig.one(EventId.QUARANTINED), "malformed", "quarantine")
        [(eml, meta)] = rig.quarantined()
        assert eml == bad
        assert "could not process" in str(meta["reason"])
        assert sink.copies_for(ALICE) == 1 and sink.received[0].content.endswith(good)
        assert pop.mailbox == []


async def test_request_stop_finishes_the_message_in_flight_then_quits(tmp_path: Path, sink: SmtpSink) -> None:
    messages = [message("one"), message("two"), message("three")]
    async with ScriptedPop3Server(messages, password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        def stop_during_first(connector: Connector, event: Event) -> None:
            if event.id == EventId.MESSAGE_DOWNLOADED:
                connector.request_stop()  # message 1 is downloaded, not yet submitted

        result = await rig.cycle(stop_during_first)

        assert result.exit_code == 0
        assert rig.of(EventId.RUNNER_STOPPING)
        assert sink.copies_for(ALICE) == 1 and sink.received[0].content.endswith(messages[0])
        assert pop.commands[-1] == "QUIT", "the session ends with QUIT, committing the one DELE"
        assert [c for c in pop.commands if c.startswith("DELE")] == ["DELE 1"]
        assert pop.mailbox == messages[1:]


async def test_sanity_a_clean_cycle_with_the_fakes(tmp_path: Path, sink: SmtpSink) -> None:
    """The rig itself: two messages in, two delivered, mailbox empty, no warnings."""
    messages = [message("one"), message("two")]
    async with ScriptedPop3Server(messages, password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
        assert [r.rcpt_tos for r in sink.received] == [(ALICE,), (ALICE,)]
        assert delivered_originals(sink, *messages) == sorted(messages)
        assert all(e.severity < Severity.WARNING for e in rig.events)
        assert rig.spool_is_empty()


async def test_smtp_login_refused_is_explained_and_keeps_the_mail(tmp_path: Path) -> None:
    original = message("needs a login")
    async with SmtpSink(login=("connector", "right-password")) as sink, \
            ScriptedPop3Server([original], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        rig.smtp_username = "connector"
        rig.passwords = StaticPasswords(smtp="wrong-password")
        assert (await rig.cycle()).exit_code == 1
        explained(rig.one(EventId.SMTP_AUTH_FAILED), "login", "secret set --smtp")
        assert "wrong-password" not in "\n".join(e.full_text() for e in rig.events)
        assert pop.mailbox == [original] and sink.received == []

        rig.passwords = StaticPasswords(smtp="right-password")
        assert (await rig.cycle()).exit_code == 0
        assert sink.copies_for(ALICE) == 1 and pop.mailbox == []


async def test_a_uidl_that_changes_between_sessions_does_not_deliver_twice(tmp_path: Path, sink: SmtpSink) -> None:
    """Some servers renumber their UIDLs (after a migration): the Message-ID still knows the message."""
    original = message("renumbered")
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, uids=["old-uid"]) as pop:
        rig = make_rig(tmp_path, pop, sink.port, leave_on_server=True)
        assert (await rig.cycle()).exit_code == 0
    async with ScriptedPop3Server([original], password=POP3_PASSWORD, uids=["new-uid"]) as pop:
        rig.pop = pop
        rig.account = make_rig(tmp_path, pop, sink.port, leave_on_server=True).account
        assert (await rig.cycle()).exit_code == 0
    assert sink.copies_for(ALICE) == 1
    assert rig.of(EventId.DUPLICATE_SUPPRESSED)
