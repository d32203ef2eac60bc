"""Which copies the Connector takes for the same message, with a scripted POP3 server and a recording sink.

The real-server side of this is tests/integration/test_duplicates.py; here the
edge cases a real mailbox rarely has: no Message-ID, no Date, the same UIDL
list served again with other ids.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from pop3gui.core.events.model import EventId
from pop3gui.core.state.journal import Journal
from tests.support.rig import ALICE, POP3_PASSWORD, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import SmtpSink

BODY = b"\r\nThe printer scanned 1 page.\r\n"


async def test_a_message_without_message_id_or_date_is_never_taken_for_another(
        tmp_path: Path, sink: SmtpSink) -> None:
    """A scanner that sends the same text twice sent two messages: nothing tells them apart."""
    scan = b"From: scanner@contoso.com\r\nTo: alice@isp.example\r\nSubject: Scan" + b"\r\n" + BODY
    async with ScriptedPop3Server([scan, scan], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
        pop.add(scan)  # and a third time, in the next cycle
        assert (await rig.cycle()).exit_code == 0
    assert sink.copies_for(ALICE) == 3
    assert not rig.of(EventId.DUPLICATE_SUPPRESSED)


async def test_a_dated_message_without_message_id_is_recognised_when_listed_again(
        tmp_path: Path, sink: SmtpSink) -> None:
    dated = (b"From: scanner@contoso.com\r\nTo: alice@isp.example\r\nSubject: Scan\r\n"
             b"Date: Mon, 30 Nov 2026 09:00:00 +0000\r\n" + BODY)
    async with ScriptedPop3Server([dated], password=POP3_PASSWORD, uids=["first"]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
    async with ScriptedPop3Server([dated.replace(b"From:", b"Received: by another hop\r\nFrom:")],
                                  password=POP3_PASSWORD, uids=["second"]) as pop:
        rig.account = make_rig(tmp_path, pop, sink.port).account
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []  # handled: deleted, not delivered again
    assert sink.copies_for(ALICE) == 1
    [suppressed] = rig.of(EventId.DUPLICATE_SUPPRESSED)
    assert ALICE in suppressed.text and suppressed.cause and suppressed.fix


async def test_a_uidl_the_server_reuses_after_a_deletion_names_a_new_message(
        tmp_path: Path, sink: SmtpSink) -> None:
    """RFC 1939 lets a server give a deleted message's UIDL to a later one: that one is delivered too."""
    # The same size, so only the journal forgetting the deleted UIDL tells them apart.
    first, later = message("first", message_id="<m1@x>"), message("later", message_id="<m2@x>")
    assert len(first) == len(later)
    async with ScriptedPop3Server([first], password=POP3_PASSWORD, uids=["1"]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
        pop.add(later, uid="1")
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
    assert delivered_subjects(sink) == ["first", "later"]


async def test_a_uidl_listed_again_after_an_unanswered_quit_is_decided_by_its_content(
        tmp_path: Path, sink: SmtpSink) -> None:
    """DELE sent, QUIT's answer never known: the same message is only deleted, a new one delivered."""
    handled, new = message("handled before"), message("new under a reused id")
    async with ScriptedPop3Server([handled, new], password=POP3_PASSWORD, uids=["1", "2"]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        journal = Journal(rig.paths.journal_db)
        for uid, data in (("1", handled), ("2", message("the message deleted before"))):
            journal.finish(rig.account.name, uid, _key_of(rig, data), len(data), "delivered", [ALICE])
        journal.mark_deleting(rig.account.name, ["1", "2"])
        journal.close()
        assert (await rig.cycle()).exit_code == 0
        assert pop.mailbox == []
    assert delivered_subjects(sink) == ["new under a reused id"]
    assert not rig.of(EventId.DUPLICATE_SUPPRESSED)  # the handled one was recognised as itself


def _key_of(rig: object, data: bytes) -> str:
    from pop3gui.core.state.journal import KEY_PREFIX
    from pop3gui.core.mail.fingerprint import message_fingerprint

    return KEY_PREFIX + message_fingerprint([data])


async def test_an_unclear_refusal_is_settled_by_asking_for_postmaster(tmp_path: Path) -> None:
    unclear = "550 Invalid recipient: <alice@contoso.com>"
    cases = [({}, "(unknown user)"),
             ({"postmaster@contoso.com": "550 Invalid recipient: <postmaster@contoso.com>"}, "(domain not accepted)")]
    for extra, label in cases:
        async with SmtpSink(rcpt={ALICE: unclear, **extra}) as sink:
            async with ScriptedPop3Server([message("unclear")], password=POP3_PASSWORD) as pop:
                rig = make_rig(tmp_path / label.strip("()").replace(" ", "-"), pop, sink.port)
                assert (await rig.cycle()).exit_code == 1
            [refused] = rig.of(EventId.RECIPIENT_REFUSED)
            assert f"{ALICE} {label}: {unclear}" in refused.text, refused.text
            assert "RCPT TO:<postmaster@contoso.com>" not in refused.transcript


async def test_a_probe_whose_null_sender_is_refused_settles_nothing(tmp_path: Path) -> None:
    """The server refusing MAIL FROM:<> says nothing about the domain: the refusal stays unclear."""
    unclear = "550 Requested action not taken: mailbox unavailable"
    async with SmtpSink(rcpt={ALICE: unclear}, mail={"": "550 5.7.1 Null sender not allowed here"}) as sink:
        async with ScriptedPop3Server([message("unclear")], password=POP3_PASSWORD) as pop:
            rig = make_rig(tmp_path, pop, sink.port)
            assert (await rig.cycle()).exit_code == 1
            assert pop.mailbox == []  # the undeliverable mailbox refused the null sender too: quarantined
    [refused] = rig.of(EventId.RECIPIENT_REFUSED)
    assert "(domain or mailbox unclear)" in refused.text, refused.text
    assert "postmaster@contoso.com" in refused.fix
    assert rig.of(EventId.QUARANTINED)


def delivered_subjects(sink: SmtpSink) -> list[str]:
    return [str(email.message_from_bytes(r.content, policy=email.policy.default)["Subject"]) for r in sink.received]
