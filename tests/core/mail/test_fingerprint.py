"""The content fingerprint tells distinct messages apart and finds copies of one."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pop3gui.core.mail.fingerprint import file_chunks, is_hop_field, message_fingerprint
from tests.support.same_id import DISTINCT, copies_of


def fp(data: bytes) -> str:
    return message_fingerprint([data])


def test_distinct_messages_sharing_a_message_id_have_distinct_fingerprints() -> None:
    prints = {name: fp(text.replace("\n", "\r\n").encode()) for name, text in DISTINCT.items()}
    assert len(set(prints.values())) == len(DISTINCT), prints


def test_copies_of_one_message_from_different_mailboxes_match() -> None:
    for name, text in DISTINCT.items():
        copies = copies_of(text)
        assert len({fp(c) for c in copies}) == 1, name


def test_any_author_written_header_counts() -> None:
    base = DISTINCT["mime"].replace("\n", "\r\n")
    for old, new in [
        ("Subject: This is a test message", "Subject: This is a test message!"),
        ("Date: Fri, 4 May 2001 14:05:44 -0400", "Date: Fri, 4 May 2001 14:05:45 -0400"),
        ("To: bob@contoso.com", "To: bob@contoso.com, eve@contoso.com"),
        ("From: john@", "Sender: x@fabrikam.example\r\nFrom: john@"),
        ("From: john@", "In-Reply-To: <a@b>\r\nFrom: john@"),
        ("Do you like", "Do  you like"),  # the body is taken as written
    ]:
        assert old in base
        assert fp(base.encode()) != fp(base.replace(old, new).encode()), new


def test_hop_fields_are_recognised_by_name_and_family() -> None:
    for name in ("Received", "DELIVERED-TO", "Return-Path", "X-Original-To", "Envelope-To", "X-Spam-Score",
                 "X-Virus-Scanned", "ARC-Seal", "Authentication-Results", "X-UIDL", "Status"):
        assert is_hop_field(name), name
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Content-Type", "MIME-Version",
                 "References", "Reply-To", "X-Mailer"):
        assert not is_hop_field(name), name


def test_a_message_without_body_or_with_an_empty_header() -> None:
    assert fp(b"Subject: a\r\n") == fp(b"Subject: a\n")
    assert fp(b"Subject: a\r\n") != fp(b"Subject: b\r\n")
    assert fp(b"\r\nbody only\r\n") != fp(b"\r\nother body\r\n")


def test_a_70000_octet_line_is_hashed_whole() -> None:
    long = b"x" * 70_000
    a = b"Subject: long\r\n\r\n" + long + b"\r\n"
    b = b"Subject: long\r\n\r\n" + long + b"y\r\n"
    assert fp(a) != fp(b)
    assert fp(a) == message_fingerprint([a[:5], a[5:40_000], a[40_000:]])


def test_a_spooled_message_gives_the_same_fingerprint(tmp_path: Path) -> None:
    data = copies_of(DISTINCT["more-cc"])[1] + b"line\r\n" * 30_000
    spool = tmp_path / "m.eml"
    spool.write_bytes(data)
    assert message_fingerprint(file_chunks(spool)) == fp(data)


@given(st.lists(st.integers(min_value=0, max_value=2_000), max_size=12),
       st.sampled_from(sorted(DISTINCT)), st.integers(min_value=0, max_value=3))
def test_the_fingerprint_does_not_depend_on_how_the_message_is_cut(cuts: list[int], name: str, copy: int) -> None:
    data = copies_of(DISTINCT[name])[copy] + b"\r\n\r\n" + b"tail\r\n" * 40
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert message_fingerprint(chunks) == fp(data)
