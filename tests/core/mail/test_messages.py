"""Bytes-level helpers: the header block, our trace line, and notices with the original attached."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from pop3gui.core.mail.messages import (
    MAX_HEADER_BYTES,
    header_block,
    read_header_block,
    trace_count,
    trace_header,
    undeliverable_notice,
)

ORIGINAL = b"From: a@fabrikam.example\r\nTo: x@isp.example\r\nSubject: hi\r\n\r\nline one\r\n\r\nline two\r\n"


def test_the_header_block_ends_at_the_first_empty_line(tmp_path: Path) -> None:
    assert header_block(ORIGINAL.splitlines(keepends=True)) == ORIGINAL.split(b"\r\n\r\n")[0] + b"\r\n"
    assert header_block([b"To: a@b.example\n", b"\n", b"body\n"]) == b"To: a@b.example\n"
    path = tmp_path / "message.eml"
    path.write_bytes(ORIGINAL)
    assert read_header_block(path) == header_block(ORIGINAL.splitlines(keepends=True))


def test_an_endless_header_block_is_cut() -> None:
    block = header_block(b"X-Junk: " + b"x" * 1000 + b"\r\n" for _ in range(2000))
    assert MAX_HEADER_BYTES < len(block) <= MAX_HEADER_BYTES + 1010


def test_the_trace_header_is_one_clean_line_naming_the_mailbox() -> None:
    line = trace_header(pop3_host="pop.isp.example", account='al"ice\r\n', uid="u1", local_host="gw")
    assert line.startswith(b"Received: from pop.isp.example by gw (pop3gui ") and line.endswith(b"\r\n")
    assert line.count(b"\r\n") == 1 and b'account "alice  ")' in line and b"with POP3 id u1;" in line


def received(account: str) -> str:
    return trace_header(pop3_host="pop.isp.example", account=account, uid="u1").decode()[len("Received: "):-2]


def test_our_trace_lines_are_counted_per_account() -> None:
    value = received("alice")
    assert trace_count([value, value, received("bob")], "alice") == 2
    assert trace_count([value], "ali") == 0
    assert trace_count(["from mx by gw with ESMTP id 1; account \"alice\")"], "alice") == 0


def test_a_folded_trace_line_still_counts() -> None:
    folded = received("alice").replace(" (pop3gui", "\r\n\t(pop3gui").replace(' account "', '\r\n account "')
    assert trace_count([folded], "alice") == 1


def test_a_name_with_a_run_of_blanks_finds_its_own_trace_lines() -> None:
    assert trace_count([received("Front  desk"), received("Front desk")], "Front  desk") == 2


def test_a_notice_attaches_the_original_unchanged() -> None:
    notice = undeliverable_notice(to="admin@contoso.com", subject="Undeliverable: Grüße", body="why\nit failed",
                                  original=ORIGINAL)
    parsed = email.message_from_bytes(notice, policy=email.policy.default)
    assert parsed["To"] == "admin@contoso.com" and "Grüße" in str(parsed["Subject"])
    assert parsed["From"] == "POP3 Connector <postmaster@contoso.com>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert ORIGINAL in notice
    text, attached = [part for part in parsed.iter_parts()]
    assert text.get_content().splitlines() == ["why", "it failed"]
    assert attached.get_content_type() == "message/rfc822"


def test_a_notice_without_the_original_is_plain_text() -> None:
    notice = undeliverable_notice(to="admin@contoso.com", subject="s", body="only\ntext", original=None)
    parsed = email.message_from_bytes(notice, policy=email.policy.default)
    assert parsed.get_content_type() == "text/plain"
    assert b"only\r\ntext\r\n" in notice
