"""Reading header fields: decoded where asked, raw where the parser chokes, never failing."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from pop3gui.core.mail.headers import decoded_text, has_value, header_text, raw_fields


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(
    ("line", "name", "expected"),
    [
        (b"Subject: plain words", "Subject", "plain words"),
        (b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", "subject", "Grüße"),
        (b"Message-ID: <abc.1@host.example>", "Message-ID", "<abc.1@host.example>"),
        (b"Message-ID: <[>", "Message-ID", "<[>"),
        (b"X-Other: value", "Subject", ""),
    ],
)
def test_header_text(line: bytes, name: str, expected: str) -> None:
    assert header_text(parsed(line + b"\r\n\r\nbody\r\n"), name) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (b"Date: Tue, 1 Dec 2026 03:00:00 +0000", True),
        (b"date: not a date at all", True),  # present is what counts, not parseable
        (b"Date:\r\n  Tue, 1 Dec 2026 03:00:00 +0000", True),  # folded
        (b"Date:   ", False),
        (b"Date:\r\nDate: Tue, 1 Dec 2026 03:00:00 +0000", True),  # the second one has a value
        (b"X-Date: Tue, 1 Dec 2026 03:00:00 +0000", False),
    ],
)
def test_has_value(lines: bytes, expected: bool) -> None:
    assert has_value(parsed(b"Subject: s\r\n" + lines + b"\r\n\r\nbody\r\n"), "Date") is expected


def test_raw_fields_are_unfolded_lower_case_and_in_order() -> None:
    message = parsed(b"To: a@contoso.com,\r\n b@contoso.com\r\nSUBJECT: =?utf-8?q?x?=\r\nTo: c@contoso.com\r\n\r\n")
    assert raw_fields(message) == [
        ("to", "a@contoso.com, b@contoso.com"),
        ("subject", "=?utf-8?q?x?="),
        ("to", "c@contoso.com"),
    ]


def test_raw_fields_decode_8bit_bytes_as_utf8_and_replace_the_rest() -> None:
    message = message_from_bytes(b"Subject: Gr\xc3\xbc\xc3\x9fe \xff\r\n\r\n")
    assert raw_fields(message) == [("subject", "Grüße \ufffd")]


def test_raw_fields_of_a_broken_message_object_are_empty() -> None:
    class Broken(EmailMessage):
        def raw_items(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("broken")

    assert raw_fields(Broken()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=?utf-8?q?Verk=C3=A4ufe?= <v@x.example>", "Verkäufe <v@x.example>"),
        ("=?iso-8859-1?b?SvZyZw==?=", "Jörg"),
        ("no encoded words", "no encoded words"),
        ("=?utf-8?b?", "=?utf-8?b?"),
    ],
)
def test_decoded_text(text: str, expected: str) -> None:
    assert decoded_text(text) == expected
