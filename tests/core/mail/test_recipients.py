"""Recipient resolution: the right local mailboxes, and never a stranger's address."""

from __future__ import annotations

import email
from email import policy
from email.message import Message
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.mail.addresses import normalize_address
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.mail.recipients import Resolution, envelope_sender, parse_headers, resolve_global, resolve_user
from pop3gui.core.mail.routing import RoutingRule

LOCAL = LocalDomains(["contoso.com", "Dömain.de"])
ADMIN = "admin@contoso.com"
ENVELOPE = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


def headers(*lines: str | bytes) -> Message:
    """A header block from lines (str is UTF-8 encoded), parsed like the worker does."""
    raw = b"".join((line.encode() if isinstance(line, str) else line) + b"\r\n" for line in lines)
    return parse_headers(raw + b"\r\nbody\r\n")


def resolve(msg: Message, *rules: RoutingRule, undeliverable_to: str = ADMIN) -> Resolution:
    return resolve_global(
        msg,
        envelope_headers=ENVELOPE,
        rules=rules,
        local=LOCAL,
        undeliverable_to=undeliverable_to,
    )


# ------------------------------------------------------------ user mailbox


def test_user_mailbox_goes_to_its_mapping_whatever_the_headers() -> None:
    result = resolve_user("Bob@Contoso.COM")
    assert result == Resolution(("Bob@contoso.com",), "mapping", (), ())


def test_user_mailbox_with_no_mapping_has_no_recipient() -> None:
    assert resolve_user("  ").recipients == ()


# ------------------------------------------------------- envelope headers


def test_local_envelope_header_is_authoritative_and_reveals_bcc() -> None:
    msg = headers(
        "Delivered-To: carol@contoso.com",
        "To: alice@contoso.com",
        "Cc: bob@contoso.com",
    )
    result = resolve(msg)
    assert result.recipients == ("carol@contoso.com",)
    assert result.source == "envelope"


def test_every_configured_envelope_header_and_occurrence_counts() -> None:
    msg = headers(
        "delivered-to: carol@contoso.com",
        "X-ORIGINAL-TO: dave@contoso.com, erin@contoso.com",
        "Delivered-To: office@isp.example",
        "To: alice@contoso.com",
    )
    result = resolve_global(
        msg,
        envelope_headers=["DELIVERED-TO", "x-original-to"],
        rules=[],
        local=LOCAL,
        undeliverable_to=ADMIN,
    )
    assert result.recipients == ("carol@contoso.com", "dave@contoso.com", "erin@contoso.com")
    assert result.foreign == ("office@isp.example",)


def test_unconfigured_envelope_header_is_ignored() -> None:
    msg = headers("Delivered-To: carol@contoso.com", "To: alice@contoso.com")
    result = resolve_global(msg, envelope_headers=[], rules=[], local=LOCAL, undeliverable_to=ADMIN)
    assert result.recipients == ("alice@contoso.com",)
    assert result.source == "headers"


RECEIVED_TOP = ("Received: from mx1.isp.example by pop.isp.example with LMTP id 7Hq\r\n"
                "\tfor <carol@contoso.com>; Mon, 01 Jan 2024 10:00:02 +0000")
RECEIVED_OLDER = ("Received: from mail.fabrikam.example by mx1.isp.example with ESMTPS id 9Kz"
                  " for <dave@contoso.com>; Mon, 01 Jan 2024 10:00:01 +0000")


def resolve_with_received(msg: Message, names: tuple[str, ...] = (*ENVELOPE, "Received")) -> Resolution:
    return resolve_global(msg, envelope_headers=names, rules=[], local=LOCAL, undeliverable_to=ADMIN)


def test_received_for_clause_reveals_bcc_when_received_is_an_envelope_header() -> None:
    msg = headers(RECEIVED_TOP, RECEIVED_OLDER, "To: alice@contoso.com")
    result = resolve_with_received(msg)
    assert result.recipients == ("carol@contoso.com",)
    assert result.source == "envelope"


def test_the_for_clause_is_found_past_the_senders_comments() -> None:
    msg = headers('Received: from x (HELO "for ceo@contoso.com") by pop.isp.example (envelope-from '
                  '<"y for <ceo@contoso.com>"@evil.example>) with LMTP id 1r for <carol@contoso.com>; '
                  "Mon, 01 Jan 2024 10:00:02 +0000", "To: alice@contoso.com")
    result = resolve_with_received(msg)
    assert result.recipients == ("carol@contoso.com",) and result.source == "envelope"


def test_only_the_topmost_received_line_counts() -> None:
    """An older hop's clause names whom an earlier server relayed for; it must not hide To/Cc."""
    msg = headers("Received: from mx1.isp.example by pop.isp.example with LMTP id 7Hq; Mon, 01 Jan 2024 10:00:02",
                  RECEIVED_OLDER, "To: alice@contoso.com", "Cc: bob@contoso.com")
    result = resolve_with_received(msg)
    assert result.recipients == ("alice@contoso.com", "bob@contoso.com")
    assert result.source == "headers"


def test_received_is_not_read_unless_configured() -> None:
    msg = headers(RECEIVED_TOP, "To: alice@contoso.com")
    assert resolve(msg).recipients == ("alice@contoso.com",)


@pytest.mark.parametrize("clause", [
    "for <mallory@evil.example>",
    "for <carol@contoso.com\u00a0RCPT TO:<m@evil.example>>",
    "for =?utf-8?q?carol=40contoso.com=0D=0ARCPT?=",
    "formal.example",
    # the sender's own text on the ISP's line must not pick the recipient
    '(envelope-from <"x for <ceo@contoso.com>"@evil.example>) id 1r for mallory@evil.example',
    "(HELO for ceo@contoso.com) id 1r",
    'id 1r for <mallory@evil.example> (for ceo@contoso.com)',
    "(unbalanced for <ceo@contoso.com>",
])
def test_a_received_clause_never_names_a_stranger(clause: str) -> None:
    msg = headers(f"Received: from x by pop.isp.example {clause}; Mon, 01 Jan 2024 10:00:02 +0000",
                  "To: alice@contoso.com")
    result = resolve_with_received(msg)
    assert result.recipients == ("alice@contoso.com",) and result.source == "headers"


def test_foreign_envelope_header_falls_back_to_to_and_cc() -> None:
    msg = headers(
        "Delivered-To: office@isp.example",
        "To: Alice <alice@contoso.com>",
        "Cc: bob@contoso.com",
        "Cc: carol@contoso.com",
    )
    result = resolve(msg)
    assert result.recipients == ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com")
    assert result.source == "headers"
    assert "office@isp.example" in result.foreign


# ------------------------------------------------------------- To and Cc


def test_foreign_cc_is_never_a_recipient_but_is_reported() -> None:
    msg = headers(
        "To: alice@contoso.com",
        "Cc: partner@fabrikam.example, Bob <bob@contoso.com>",
    )
    result = resolve(msg)
    assert result.recipients == ("alice@contoso.com", "bob@contoso.com")
    assert result.foreign == ("partner@fabrikam.example",)


def test_missing_headers_go_to_the_undeliverable_mailbox() -> None:
    result = resolve(headers("Subject: hello"))
    assert result == Resolution((ADMIN,), "undeliverable", (), ())


def test_only_foreign_addresses_go_to_the_undeliverable_mailbox() -> None:
    result = resolve(headers("To: someone@fabrikam.example"))
    assert result.recipients == (ADMIN,)
    assert result.source == "undeliverable"
    assert result.foreign == ("someone@fabrikam.example",)


def test_empty_undeliverable_mailbox_gives_no_recipient() -> None:
    result = resolve(headers("To: someone@fabrikam.example"), undeliverable_to="")
    assert result.recipients == ()
    assert result.source == "undeliverable"


def test_duplicates_across_to_cc_and_rules_collapse_keeping_order() -> None:
    msg = headers(
        "To: bob@CONTOSO.COM, alice@contoso.com",
        "Cc: Bob <bob@Contoso.com>, alice@contoso.COM",
    )
    rule = RoutingRule("to-cc", "alice", "bob@contoso.com")
    result = resolve(msg, rule)
    assert result.recipients == ("bob@contoso.com", "alice@contoso.com")


def test_local_part_case_is_kept() -> None:
    # RFC 5321: the local part is the receiving server's business, so it is passed on as written.
    result = resolve(headers("To: Alice.Smith@contoso.com"))
    assert result.recipients == ("Alice.Smith@contoso.com",)


def test_idn_domains_match_in_either_spelling() -> None:
    msg = headers(
        "To: Jörg <jörg@DÖMAIN.de>",
        "Cc: anna@xn--dmain-jua.de, z@xn--dmain-jua.com",
    )
    result = resolve(msg)
    assert result.recipients == ("jörg@xn--dmain-jua.de", "anna@xn--dmain-jua.de")
    assert result.foreign == ("z@xn--dmain-jua.com",)


def test_encoded_words_in_display_names() -> None:
    msg = headers(
        "To: =?utf-8?q?M=C3=BCller=2C_Hans?= <hans@contoso.com>,",
        " =?iso-8859-1?b?SvZyZw==?= <j@contoso.com>",
    )
    assert resolve(msg).recipients == ("hans@contoso.com", "j@contoso.com")


def test_groups_comments_and_quoted_local_parts() -> None:
    msg = headers(
        "To: Team: a@contoso.com, (the boss) b@contoso.com;, undisclosed-recipients:;",
        'Cc: "Doe, John" <"john doe"@contoso.com>, "x"@contoso.com (comment, with comma)',
    )
    assert resolve(msg).recipients == (
        "a@contoso.com",
        "b@contoso.com",
        '"john doe"@contoso.com',
        "x@contoso.com",
    )


def test_semicolon_separated_list_is_read() -> None:
    assert resolve(headers("To: a@contoso.com; b@contoso.com")).recipients == (
        "a@contoso.com",
        "b@contoso.com",
    )


def test_folded_header() -> None:
    msg = headers("To: a@contoso.com,", "  b@contoso.com,", "\tc@contoso.com")
    assert resolve(msg).recipients == ("a@contoso.com", "b@contoso.com", "c@contoso.com")


def test_display_name_that_looks_like_an_address_is_not_the_address() -> None:
    result = resolve(headers('To: "alice@contoso.com" <mallory@evil.example>'))
    assert result.recipients == (ADMIN,)
    assert result.source == "undeliverable"
    assert result.foreign == ("mallory@evil.example",)

    result = resolve(headers("To: =?utf-8?q?alice=40contoso.com?= <mallory@evil.example>"))
    assert result.foreign == ("mallory@evil.example",)
    assert result.source == "undeliverable"


def test_unquoted_address_as_display_name_names_nobody() -> None:
    msg = headers("To: alice@contoso.com <mallory@evil.example>, bob@contoso.com")
    assert resolve(msg).recipients == ("bob@contoso.com",)


def test_encoded_word_cannot_smuggle_crlf_or_nul_into_rcpt() -> None:
    msg = headers(
        "To: =?utf-8?q?x=0D=0ARCPT_TO=3A=3Cm=40evil.example=3E?=@contoso.com,",
        " =?utf-8?q?y=00?=@contoso.com, ok@contoso.com",
    )
    assert resolve(msg).recipients == ("ok@contoso.com",)


def test_nul_and_8bit_garbage_do_not_stop_resolution() -> None:
    msg = headers(
        b"To: a\x00b@contoso.com, \xff\xfe\x00junk, good@contoso.com",
        b"Cc: \xc3(\x80@contoso.com",
    )
    assert resolve(msg).recipients == ("good@contoso.com",)


@pytest.mark.parametrize("parse", ["parse_headers", "bytes-default", "compat32"])
def test_utf8_headers_whatever_parser_the_caller_used(parse: str) -> None:
    raw = "To: Jörg <jörg@dömain.de>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode()
    if parse == "parse_headers":
        msg: Message = parse_headers(raw)
    elif parse == "bytes-default":
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    else:
        msg = email.message_from_bytes(raw)
    rules = (
        RoutingRule("subject", "GRÜSSE", "x@contoso.com"),  # Unicode case folding: ß ~ SS
        RoutingRule("subject", "grüße", "y@contoso.com"),
        RoutingRule("subject", "gr\ufffd", "z@contoso.com"),
    )
    result = resolve(msg, *rules)
    assert result.recipients == ("jörg@xn--dmain-jua.de", "x@contoso.com", "y@contoso.com")


# ------------------------------------------------------------ routing rules


def test_to_cc_rule_matches_case_insensitively_in_raw_text() -> None:
    rule = RoutingRule("to-cc", "Sales@", "bob@contoso.com")
    result = resolve(headers("To: partner@fabrikam.example", "Cc: SALES@contoso.com"), rule)
    assert result.rules_matched == (rule,)
    assert "bob@contoso.com" in result.recipients


def test_to_cc_rule_matches_a_decoded_display_name() -> None:
    rule = RoutingRule("to-cc", "verkäufe", "bob@contoso.com")
    result = resolve(headers("To: =?utf-8?q?Verk=C3=A4ufe?= <v@fabrikam.example>"), rule)
    assert result.recipients == ("bob@contoso.com",)
    assert result.source == "headers"


def test_to_cc_rule_does_not_look_at_the_subject() -> None:
    rule = RoutingRule("to-cc", "sales", "bob@contoso.com")
    result = resolve(headers("To: x@fabrikam.example", "Subject: sales figures"), rule)
    assert result.rules_matched == ()
    assert result.recipients == (ADMIN,)


def test_subject_rule_matches_decoded_subject_case_insensitively() -> None:
    rule = RoutingRule("subject", "INVOICE", "accounts@contoso.com")
    msg = headers("To: x@fabrikam.example", "Subject: =?utf-8?q?Your_invoice_n=C2=B0_42?=")
    result = resolve(msg, rule)
    assert result.recipients == ("accounts@contoso.com",)
    assert result.rules_matched == (rule,)
    assert resolve(headers("Subject: receipt"), rule).rules_matched == ()


def test_rule_target_in_a_foreign_domain_is_dropped() -> None:
    rule = RoutingRule("to-cc", "sales@", "sales@fabrikam.example")
    result = resolve(headers("To: sales@contoso.com"), rule)
    assert result.recipients == ("sales@contoso.com",)
    assert result.foreign == ("sales@fabrikam.example",)
    assert result.rules_matched == (rule,)


def test_rule_target_that_is_not_an_address_is_dropped() -> None:
    rule = RoutingRule("subject", "x", "not an address")
    result = resolve(headers("Subject: x"), rule)
    assert result.recipients == (ADMIN,)
    assert result.foreign == ("not an address",)


def test_rules_also_apply_when_the_envelope_decides() -> None:
    rule = RoutingRule("subject", "urgent", "boss@contoso.com")
    msg = headers("Delivered-To: carol@contoso.com", "To: alice@contoso.com", "Subject: URGENT")
    result = resolve(msg, rule)
    assert result.recipients == ("carol@contoso.com", "boss@contoso.com")
    assert result.source == "envelope"


def test_empty_rule_text_matches_nothing() -> None:
    rule = RoutingRule("to-cc", "", "b@contoso.com")
    assert resolve(headers("To: a@contoso.com"), rule).rules_matched == ()


# ------------------------------------------------------------ envelope sender


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Return-Path: <>", ""),
        ("Return-Path: <bounce@isp.example>", "bounce@isp.example"),
        ("Return-Path: bounce@ISP.example", "bounce@isp.example"),
        ("Return-Path: <b@dömain.de>", "b@xn--dmain-jua.de"),
        ("Return-Path: garbage", ""),
        ("Return-Path: <a@x.example> <b@y.example>", ""),
        ("Return-Path: <a\x01@x.example>", ""),
        ("Subject: no return path", ""),
    ],
)
def test_envelope_sender(line: str, expected: str) -> None:
    assert envelope_sender(headers(line)) == expected


# ------------------------------------------------------------ parsing


def test_parse_headers_stops_at_the_blank_line() -> None:
    msg = parse_headers(b"To: a@contoso.com\r\n\r\nTo: b@contoso.com\r\nSubject: body\r\n")
    assert msg.get_all("To") == ["a@contoso.com"]
    assert msg["Subject"] is None
    lf = parse_headers(b"To: a@contoso.com\n\nTo: b@contoso.com\n")
    assert lf.get_all("To") == ["a@contoso.com"]


def test_parse_headers_on_garbage() -> None:
    for raw in (b"", b"\x00\xff\xfe", b"\r\n\r\n", b": : :\r\n", b"To\x00: x\r\n", b"\xff" * 10000):
        parse_headers(raw)


def test_five_thousand_addresses_resolve() -> None:
    to = ", ".join(f'"User {i}, Sales" <user{i}@contoso.com>' for i in range(2500))
    cc = "Everyone: " + ", ".join(f"u{i}@fabrikam.example" for i in range(2500)) + ";"
    result = resolve(headers(f"To: {to}", f"Cc: {cc}"))
    assert len(result.recipients) == 2500
    assert len(result.foreign) == 2500


# ------------------------------------------------------------ properties

_NAMES = ["To", "Cc", "CC", "Delivered-To", "X-Original-To", "Subject", "Return-Path", "X-Junk"]
_PIECES = [
    "alice@contoso.com",
    "BOB@CONTOSO.COM",
    "jörg@dömain.de",
    "x@evil.example",
    "mallory@evil.example",
    "contoso.com",
    '"alice@contoso.com"',
    "<",
    ">",
    '"',
    "(",
    ")",
    ",",
    ";",
    ":",
    "@",
    "\\",
    " ",
    "\r\n ",
    "\r\n",
    "=?utf-8?q?a=40contoso.com?=",
    "=?utf-8?q?=0D=0A?=",
    "=?utf-8?b?",
    "?=",
    "[",
    "]",
    "\x00",
    "\t",
    "ü",
    "\ufffd",
]
_header_text = st.lists(
    st.tuples(
        st.sampled_from(_NAMES),
        st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=5)), max_size=25),
    ),
    max_size=8,
).map(lambda lines: "".join(f"{n}: {''.join(v)}\r\n" for n, v in lines).encode("utf-8", "replace"))

_RULES = [
    RoutingRule("to-cc", "alice", "sales@contoso.com"),
    RoutingRule("subject", "ü", "x@evil.example"),
    RoutingRule("to-cc", "@", "not an address"),
]


def _check_no_relay(result: Resolution) -> None:
    assert result.source in ("envelope", "headers", "undeliverable")
    assert len(set(result.recipients)) == len(result.recipients)
    if result.source == "undeliverable":
        assert result.recipients == (ADMIN,)
    for address in result.recipients:
        assert LOCAL.is_local(address)
        assert normalize_address(address) == address
    for address in result.foreign:
        assert not LOCAL.is_local(address)


_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(
    st.one_of(_header_text, st.binary(max_size=400), _header_text.map(lambda b: b + b"To: \xff\x80"))
)
def test_any_header_bytes_resolve_without_relaying(raw: bytes) -> None:
    for msg in (
        parse_headers(raw),
        BytesParser(policy=policy.default).parsebytes(raw, headersonly=True),
        email.message_from_bytes(raw),
    ):
        _check_no_relay(resolve(msg, *_RULES))
        sender = envelope_sender(msg)
        assert sender == "" or normalize_address(sender) == sender


def test_a_no_break_space_glued_to_an_address_makes_it_no_address() -> None:
    """Found by the property test: the parser keeps U+00A0 in the local part."""
    headers = parse_headers(b"Return-Path: \xc2\xa0alice@contoso.com\r\nTo: \xc2\xa0bob@contoso.com\r\n")
    assert envelope_sender(headers) == ""
    result = resolve_global(headers, envelope_headers=(), rules=(), local=LocalDomains(["contoso.com"]),
                            undeliverable_to="admin@contoso.com")
    assert result.recipients == ("admin@contoso.com",)
