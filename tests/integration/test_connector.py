"""The engine against a real Dovecot (the ISP) and a real Postfix (the office server).

Postfix accepts contoso.com and contoso.local, refuses other domains with
``554 5.7.1 Relay access denied`` (the KB's failure), knows no
``ghost@contoso.com`` (5.1.1) and takes at most 200 kB per message.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from pop3gui.core.events.model import EventId, Severity
from pop3gui.core.state.journal import Journal
from tests.conftest import Pop3User
from tests.support.office import ADMIN, Office, make_message

pytestmark = pytest.mark.servers


def recipients_of(office: Office) -> list[str]:
    return sorted(str(m["Delivered-To"]).lower() for m in office.local.delivered())


async def test_user_mailbox_delivers_everything_to_its_recipient_and_empties_it(
        office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="someone@isp.example", subject="one"))
    office.isp.deliver(pop3_user.name, make_message(to="other@elsewhere.example", subject="two"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@contoso.com"))

    result = await office.run_cycle()

    assert result.exit_code == 0
    delivered = office.local.wait_for_delivered(2)
    assert sorted(str(m["Subject"]) for m in delivered) == ["one", "two"]
    assert recipients_of(office) == ["alice@contoso.com", "alice@contoso.com"]
    traces = [" ".join(map(str, m.get_all("Received", []))) for m in delivered]
    assert all("pop3gui" in t and 'account "alice"' in t for t in traces)
    assert office.isp.messages(pop3_user.name) == []
    assert len(office.of(EventId.MESSAGE_DELIVERED)) == 2


async def test_global_mailbox_uses_to_cc_and_never_relays_a_foreign_cc(
        office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(
        to="Bob <bob@contoso.com>", cc="carol@CONTOSO.com, Partner <partner@fabrikam.example>", subject="team"))
    office.use(office.account_for(pop3_user, "catch-all", kind="global", deliver_to=""))

    result = await office.run_cycle()

    assert result.exit_code == 0
    office.local.wait_for_delivered(2)
    assert recipients_of(office) == ["bob@contoso.com", "carol@contoso.com"]
    assert not office.of(EventId.RECIPIENT_REFUSED)  # the foreign Cc never reached RCPT TO
    dropped = office.of(EventId.FOREIGN_RECIPIENTS_DROPPED)
    assert dropped and "partner@fabrikam.example" in dropped[0].text
    assert "RCPT TO:<partner@fabrikam.example>" not in "\n".join(e.transcript for e in office.events)


async def test_envelope_header_reveals_bcc_and_wins_over_to_cc(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(
        to="bob@contoso.com", headers={"Delivered-To": "dave@contoso.com"}, subject="bcc copy"))
    office.use(office.account_for(pop3_user, "catch-all", kind="global", deliver_to=""))

    assert (await office.run_cycle()).exit_code == 0
    office.local.wait_for_delivered(1)
    assert recipients_of(office) == ["dave@contoso.com"]


async def test_routing_rule_and_no_local_recipient(office: Office, pop3_user: Pop3User) -> None:
    from pop3gui.core.config.model import RoutingRuleConfig

    office.isp.deliver(pop3_user.name, make_message(to="sales@isp.example", subject="rule"))
    office.isp.deliver(pop3_user.name, make_message(to="nobody@isp.example", subject="stray"))
    account = office.account_for(pop3_user, "catch-all", kind="global", deliver_to="")
    office.use(account, rules=(RoutingRuleConfig("catch-all", "sales@", "sales-team@contoso.com"),))

    assert (await office.run_cycle()).exit_code == 0
    delivered = office.local.wait_for_delivered(2)
    by_subject = {str(m["Subject"]): str(m["Delivered-To"]) for m in delivered}
    assert by_subject == {"rule": "sales-team@contoso.com", "stray": ADMIN}
    assert office.of(EventId.NO_LOCAL_RECIPIENT)


async def test_mapping_to_a_domain_the_server_refuses_is_diagnosed_and_not_lost(
        office: Office, pop3_user: Pop3User) -> None:
    """The KB's failure: the message goes to the admin with the reason, never into the void."""
    original = make_message(to="alice@isp.example", subject="for fabrikam")
    office.isp.deliver(pop3_user.name, original)
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"))

    result = await office.run_cycle()

    assert result.exit_code == 1
    refused = office.of(EventId.RECIPIENT_REFUSED)
    assert len(refused) == 1
    event = refused[0]
    assert event.severity == Severity.ERROR
    assert "5.7.1" in event.text and "fabrikam.com" in event.cause
    assert "accepted domains" in event.fix and "recipient policy" in event.fix
    assert "RCPT TO:<alice@fabrikam.com>" in event.transcript and "554 5.7.1" in event.transcript
    assert office.of(EventId.POLICY_WARNING)  # said before any mail flowed
    notice = office.local.wait_for_delivered(1)[0]
    assert str(notice["Delivered-To"]) == ADMIN
    assert "Undeliverable POP3 mail" in str(notice["Subject"])
    text = notice.as_bytes()
    assert b"5.7.1" in text and b"for fabrikam" in text
    attached = [p for p in notice.walk() if p.get_content_type() == "message/rfc822"]
    assert attached, "the original must travel with the notice"
    assert office.isp.messages(pop3_user.name) == []


async def test_unknown_local_user_is_explained(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "ghost", deliver_to="ghost@contoso.com"))

    assert (await office.run_cycle()).exit_code == 1
    event = office.of(EventId.RECIPIENT_REFUSED)[0]
    assert "5.1.1" in event.text
    assert "no mailbox ghost@contoso.com" in event.cause
    office.local.wait_for_delivered(1)
    assert recipients_of(office) == [ADMIN]


async def test_message_over_the_servers_size_limit_stays_on_the_pop3_server(
        office: Office, pop3_user: Pop3User) -> None:
    big = make_message(to="x@isp.example", subject="huge", body=("x" * 998 + "\r\n") * 300)
    office.isp.deliver(pop3_user.name, big)
    office.use(office.account_for(pop3_user, "alice"))

    assert (await office.run_cycle()).exit_code == 0
    too_big = office.of(EventId.MESSAGE_TOO_BIG)
    assert len(too_big) == 1 and "limit" in too_big[0].text
    assert not list(office.paths.quarantine_dir.glob("*.eml"))
    assert len(office.isp.messages(pop3_user.name)) == 1


async def test_bigger_than_max_message_kb_stays_on_the_server_with_one_event(
        office: Office, pop3_user: Pop3User) -> None:
    from dataclasses import replace

    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", body="y" * 5000))
    office.use(office.account_for(pop3_user, "alice"),
              delivery=replace(office.config.delivery, max_message_kb=1))
    assert (await office.run_cycle()).exit_code == 0
    assert (await office.run_cycle()).exit_code == 0
    assert len(office.of(EventId.MESSAGE_TOO_BIG)) == 1
    assert len(office.isp.messages(pop3_user.name)) == 1
    assert office.local.delivered() == []


async def test_second_run_delivers_nothing_twice(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", leave_on_server=True))
    await office.run_cycle()
    office.local.wait_for_delivered(1)
    await office.run_cycle()
    assert office.local.wait_for_queue_empty()
    assert len(office.local.delivered()) == 1


async def test_leave_on_server_deletes_after_the_configured_days(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", leave_on_server=True, delete_after_days=3))

    await office.run_cycle()
    office.local.wait_for_delivered(1)
    assert len(office.isp.messages(pop3_user.name)) == 1
    await office.run_cycle(now_offset_days=2)
    assert len(office.isp.messages(pop3_user.name)) == 1
    await office.run_cycle(now_offset_days=3.1)
    assert office.isp.messages(pop3_user.name) == []
    assert len(office.local.delivered()) == 1
    await office.run_cycle(now_offset_days=3.2)  # the deleted message's row is pruned, nothing resent
    journal = Journal(office.paths.journal_db)
    assert journal.records("alice") == {}
    journal.close()
    assert len(office.local.delivered()) == 1


async def test_same_message_id_to_same_recipient_is_suppressed(office: Office, pop3_user: Pop3User) -> None:
    copy = make_message(to="x@isp.example", message_id="<same@fabrikam.example>")
    office.isp.deliver(pop3_user.name, copy)
    office.isp.deliver(pop3_user.name, copy)
    office.use(office.account_for(pop3_user, "alice"))

    assert (await office.run_cycle()).exit_code == 0
    office.local.wait_for_delivered(1)
    assert office.local.wait_for_queue_empty()
    assert len(office.local.delivered()) == 1
    assert len(office.of(EventId.DUPLICATE_SUPPRESSED)) == 1
    assert office.isp.messages(pop3_user.name) == []


async def test_wrong_password_fails_the_account_with_cause_and_fix(office: Office, pop3_user: Pop3User) -> None:
    from pop3gui.core.state.credentials import Credentials

    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    account = office.account_for(pop3_user, "alice")
    Credentials().set_pop3_password("alice", "not-the-password")
    office.use(account)

    result = await office.run_cycle()
    assert result.exit_code == 1
    event = office.of(EventId.POP3_LOGIN_FAILED)[0]
    assert event.cause and event.fix
    assert "not-the-password" not in "\n".join(e.full_text() for e in office.events)
    assert len(office.isp.messages(pop3_user.name)) == 1


async def test_passwords_never_reach_state_logs_or_events(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"))
    await office.run_cycle()
    secret = pop3_user.password.encode()
    for path in office.home.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert all(secret.decode() not in e.full_text() for e in office.events)


async def test_plain_pop3_with_stls(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", port=office.isp.pop3_port, security="starttls"))
    assert (await office.run_cycle()).exit_code == 0
    office.local.wait_for_delivered(1)


async def test_untrusted_certificate_is_explained(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", ca_file=""))
    assert (await office.run_cycle()).exit_code == 1
    event = office.of(EventId.POP3_TLS_FAILED)[0]
    assert "127.0.0.1" in event.text or "127.0.0.1" in event.cause
    assert event.fix
    assert len(office.isp.messages(pop3_user.name)) == 1


def test_notice_keeps_original_bytes(tmp_path: Path) -> None:
    from pop3gui.core.mail.messages import undeliverable_notice

    original = make_message(to="x@isp.example", subject="Grüße", body="Zeile mit Umlaut ä\r\n.\r\n..\r\n")
    notice = undeliverable_notice(to=ADMIN, subject="Undeliverable POP3 mail: Grüße", body="why", original=original)
    parsed = email.message_from_bytes(notice, policy=email.policy.default)
    assert "Grüße" in str(parsed["Subject"])
    assert original in notice


async def test_quarantined_message_is_delivered_by_resubmit_after_the_fix(
        office: Office, pop3_user: Pop3User) -> None:
    """Nobody accepts it (mapping and undeliverable mailbox both foreign), then the admin fixes the mapping."""
    from dataclasses import replace

    from pop3gui.core.events.model import EventBus
    from pop3gui.core.state.spool import Quarantine
    from pop3gui.core.engine.cycle import Connector

    original = make_message(to="x@isp.example", subject="stuck")
    office.isp.deliver(pop3_user.name, original)
    account = office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com")
    office.use(account, delivery=replace(office.config.delivery, undeliverable_to="postmaster@fabrikam.com"))
    assert (await office.run_cycle()).exit_code == 1
    [record] = list(Quarantine(office.paths.quarantine_dir).records())
    assert office.local.delivered() == [] and office.isp.messages(pop3_user.name) == []

    fixed = office.use(replace(account, deliver_to="alice@contoso.com"),
                       delivery=replace(office.config.delivery, undeliverable_to=ADMIN))
    connector = Connector(fixed, office.paths, EventBus())
    try:
        outcome = await connector.resubmit(record.id)
    finally:
        connector.close()
    assert outcome == "Delivered."
    [delivered] = office.local.wait_for_delivered(1)
    assert str(delivered["Delivered-To"]) == "alice@contoso.com" and str(delivered["Subject"]) == "stuck"
    assert list(Quarantine(office.paths.quarantine_dir).records()) == []
    assert list(office.paths.resubmit_dir.iterdir()) == []  # the copy it was sent from is gone too


async def test_resubmitting_a_message_whose_file_was_removed_is_a_state_error_and_keeps_the_record(
        office: Office, pop3_user: Pop3User) -> None:
    from dataclasses import replace

    from pop3gui.core.engine.cycle import Connector
    from pop3gui.core.errors import StateError
    from pop3gui.core.events.model import EventBus
    from pop3gui.core.state.spool import Quarantine

    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="stuck"))
    account = office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com")
    office.use(account, delivery=replace(office.config.delivery, undeliverable_to="postmaster@fabrikam.com"))
    assert (await office.run_cycle()).exit_code == 1
    quarantine = Quarantine(office.paths.quarantine_dir)
    [record] = list(quarantine.records())
    quarantine.message_path(record.id).unlink()  # removed by hand

    connector = Connector(office.config, office.paths, EventBus())
    try:
        with pytest.raises(StateError) as caught:
            await connector.resubmit(record.id)
    finally:
        connector.close()
    assert record.id in str(caught.value) and "stays in quarantine" in caught.value.fix
    assert [r.id for r in quarantine.records()] == [record.id]
    assert list(office.paths.resubmit_dir.iterdir()) == []


async def test_turning_off_certificate_checks_is_announced_every_connection(
        office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice", ca_file="", verify_tls=False))
    assert (await office.run_cycle()).exit_code == 0
    await office.run_cycle()
    warnings = office.of(EventId.TLS_NOT_VERIFIED)
    assert len(warnings) == 2 and "127.0.0.1" in warnings[0].text and "ca_file" in warnings[0].fix
