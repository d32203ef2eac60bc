"""Every refusal wording real servers use gets its own cause and fix."""

from __future__ import annotations

import pytest

from pop3gui.core.failures import REFUSALS, Failure
from pop3gui.core.smtp.diagnose import (
    WORDINGS,
    classify,
    domain_taken,
    diagnose_message,
    diagnose_recipient,
    needs_postmaster_probe,
    refusal_label,
)


def _split(reply: str) -> tuple[int, str]:
    code, _, text = reply.partition(" ")
    return int(code), text


@pytest.mark.parametrize(("kind", "reply"), [(w.kind, e) for w in WORDINGS for e in w.examples])
def test_every_documented_wording_is_classified_as_its_row(kind: Failure, reply: str) -> None:
    assert classify(*_split(reply)).kind is kind


@pytest.mark.parametrize("reply", [
    "550 5.7.1 Unable to relay for erin@contoso.eu",
    "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
    "554 5.7.1 <erin@contoso.eu>: Relay access denied",
    "550 relay not permitted",
    "550 5.7.1 <erin@contoso.eu>... Relaying denied",
    "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
    "550 Delivery is not allowed to this address.",
    "550 5.7.64 TenantAttribution; Relay Access Denied",
])
def test_the_kb_failure_in_every_servers_words(reply: str) -> None:
    d = diagnose_recipient(*_split(reply), "erin@contoso.eu")
    assert d.kind is Failure.DOMAIN_NOT_ACCEPTED
    assert "does not accept mail for the domain contoso.eu" in d.cause and reply in d.cause
    assert d.fix.startswith("Add contoso.eu to the local server's accepted domains")
    assert not needs_postmaster_probe(*_split(reply))


@pytest.mark.parametrize("reply", ["550 Invalid recipient: <erin@contoso.eu>", "550", "554 5.0.0 Error",
                                   "550 Requested action not taken: mailbox unavailable"])
def test_an_unclear_refusal_is_settled_by_the_postmaster_probe(reply: str) -> None:
    assert needs_postmaster_probe(*_split(reply))
    unsettled = diagnose_recipient(*_split(reply), "erin@contoso.eu")
    assert unsettled.kind is Failure.UNCLEAR and "postmaster@contoso.eu" in unsettled.fix
    refused = diagnose_recipient(*_split(reply), "erin@contoso.eu", postmaster_accepted=False)
    assert refused.kind is Failure.DOMAIN_NOT_ACCEPTED and "refuses postmaster@contoso.eu too" in refused.cause
    accepted = diagnose_recipient(*_split(reply), "erin@contoso.eu", postmaster_accepted=True)
    assert accepted.kind is Failure.UNKNOWN_USER and "no mailbox erin@contoso.eu" in accepted.cause
    assert "does accept postmaster@contoso.eu" in accepted.cause


def test_a_bare_policy_status_settles_to_domain_or_policy() -> None:
    reply = (554, "5.7.1 <bob@contoso.com>: Recipient address rejected: Access denied")
    assert diagnose_recipient(*reply, "bob@contoso.com", postmaster_accepted=True).kind is Failure.POLICY
    assert diagnose_recipient(*reply, "bob@contoso.com", postmaster_accepted=False).kind \
        is Failure.DOMAIN_NOT_ACCEPTED


def test_every_kind_has_its_own_cause_and_fix() -> None:
    samples = {
        Failure.DOMAIN_NOT_ACCEPTED: "550 relay not permitted",
        Failure.UNKNOWN_USER: "550 Unrouteable address",
        Failure.MAILBOX_FULL: "552 5.2.2 Mailbox full",
        Failure.TOO_BIG: "552 Message size exceeds maximum permitted",
        Failure.LINE_TOO_LONG: "500 5.0.0 Line too long",
        Failure.POLICY: "554 5.7.1 Message rejected as spam",
        Failure.TEMPORARY: "451 4.3.0 Try again later",
        Failure.UNCLEAR: "550 Invalid recipient: <x@contoso.com>",
        Failure.OTHER: "550 5.6.0 Something else entirely went wrong here",
    }
    seen = {}
    for kind, reply in samples.items():
        d = diagnose_recipient(*_split(reply), "x@contoso.com")
        assert d.kind is kind, reply
        assert len(d.cause.split()) >= 6 and len(d.fix.split()) >= 6, d
        seen[kind] = (d.cause.split("(reply")[0], d.fix)
    assert len({fix for _, fix in seen.values()}) == len(samples)


def test_the_whole_message_refused_for_size_line_length_policy() -> None:
    assert diagnose_message(552, "5.3.4 Message size exceeds fixed limit").kind is Failure.TOO_BIG
    assert diagnose_message(500, "5.0.0 Line too long").kind is Failure.LINE_TOO_LONG
    assert "1000 octets" in diagnose_message(500, "5.0.0 Line too long").cause
    assert diagnose_message(554, "5.7.1 Rejected by content filter").kind is Failure.POLICY
    assert diagnose_message(451, "4.3.0 Queue file write error").kind is Failure.TEMPORARY


def test_4xx_is_temporary_whatever_it_says() -> None:
    assert classify(450, "4.1.1 <x@contoso.com>: Recipient address rejected: User unknown").kind \
        is Failure.TEMPORARY


def test_every_refusal_meaning_but_other_has_words_for_the_event_text() -> None:
    labels = {kind: refusal_label(kind) for kind in REFUSALS}
    assert labels[Failure.OTHER] == ""
    assert labels[Failure.UNCLEAR] == " (domain or mailbox unclear)"
    assert all(label.startswith(" (") and "_" not in label for kind, label in labels.items() if kind != Failure.OTHER)
    assert len(set(labels.values())) == len(labels)


def test_a_specific_status_wins_over_an_unclear_wording() -> None:
    reply = (550, "5.1.1 <alice@contoso.com>: Recipient address rejected: unknown")
    assert classify(*reply).kind is Failure.UNKNOWN_USER
    assert not needs_postmaster_probe(*reply)


@pytest.mark.parametrize("reply", ["550 Invalid recipient: <spam@contoso.com>",
                                   "550 Invalid recipient: <info@antivirus-shop.de>",
                                   "550 Requested action not taken: mailbox unavailable <blocked@contoso.com>"])
def test_the_address_a_reply_quotes_never_steers_its_meaning(reply: str) -> None:
    assert classify(*_split(reply)).kind is Failure.UNCLEAR


def test_a_refusal_about_the_sender_is_policy_not_the_recipients_mailbox() -> None:
    reply = (550, "5.1.0 <noreply@contoso.com>: Sender address rejected: User unknown in virtual mailbox table")
    d = diagnose_recipient(*reply, "bob@contoso.com")
    assert d.kind is Failure.POLICY and "Create the mailbox" not in d.fix


@pytest.mark.parametrize(("reply", "taken"), [
    ("250 2.1.5 Ok", True),
    ("550 Invalid recipient: <postmaster@contoso.eu>", False),
    ("550 relay not permitted", False),
    ("550 5.1.1 User unknown", False),
    ("554 5.7.1 Message rejected as spam", None),
    ("451 4.3.0 Try again later", None),
])
def test_what_the_postmaster_reply_says_of_the_domain(reply: str, taken: bool | None) -> None:
    assert domain_taken(*_split(reply)) is taken
