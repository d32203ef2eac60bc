"""Bytes-level helpers for downloaded messages: headers, trace line, notices.

The connector never rewrites a message: it only prepends a ``Received:``
trace header, and a notice to the undeliverable mailbox carries the original
unchanged as an attachment.
"""

from __future__ import annotations

import email.utils
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path

from pop3gui import __version__

MAX_HEADER_BYTES = 1024 * 1024


def read_header_block(path: Path) -> bytes:
    """The header block of a spooled message (up to the first empty line, capped)."""
    with path.open("rb") as fh:
        return header_block(fh)


def header_block(lines: Iterable[bytes]) -> bytes:
    """The header block of a message read line by line (up to the first empty line, capped)."""
    out = bytearray()
    for line in lines:
        if line in (b"\r\n", b"\n"):
            break
        out += line
        if len(out) > MAX_HEADER_BYTES:
            break
    return bytes(out)


def _clean(text: str) -> str:
    """Keep a header value on one line and printable."""
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def trace_count(headers: Iterable[str], account: str) -> int:
    """How many of our own ``Received:`` lines name this account: a message that
    keeps coming back through the same mailbox is a loop.

    Whitespace runs are compared as one space on both sides: a relay may fold
    the line, and a name with two spaces in a row must still find itself."""
    marker = " ".join(f'account "{_clean(account).replace(chr(34), "")}")'.split())
    return sum(1 for value in headers if "(pop3gui " in value and marker in " ".join(value.split()))


def trace_header(*, pop3_host: str, account: str, uid: str, local_host: str | None = None,
                 protocol: str = "POP3") -> bytes:
    """A ``Received:`` line so the admin can follow a message back to its mailbox (POP3 or IMAP)."""
    local = local_host or socket.gethostname() or "localhost"
    value = (
        f"from {_clean(pop3_host)} by {_clean(local)} (pop3gui {__version__}, account "
        f"\"{_clean(account).replace(chr(34), '')}\") with {_clean(protocol)} id {_clean(uid)}; {email.utils.formatdate()}"
    )
    return f"Received: {value}\r\n".encode("utf-8")


def undeliverable_notice(*, to: str, subject: str, body: str, original: bytes | None) -> bytes:
    """A notice for the undeliverable mailbox, with the original message attached as is."""
    boundary = f"=_pop3gui_{uuid.uuid4().hex}"
    sender_domain = to.rpartition("@")[2] or "localhost"
    headers = [
        f"From: POP3 Connector <postmaster@{sender_domain}>",
        f"To: <{to}>",
        f"Subject: {_encode_subject(subject)}",
        f"Date: {email.utils.formatdate(localtime=True)}",
        f"Message-ID: {email.utils.make_msgid(domain=sender_domain)}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
    ]
    text_part = (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace("\r\n", "\n").replace("\n", "\r\n")
    ).encode("utf-8")
    if original is None:
        head = "\r\n".join(headers + ["Content-Type: text/plain; charset=utf-8",
                                      "Content-Transfer-Encoding: 8bit"]).encode("utf-8")
        return head + b"\r\n\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n"
    head = "\r\n".join(headers + [f'Content-Type: multipart/mixed; boundary="{boundary}"']).encode("utf-8")
    b = boundary.encode("ascii")
    attached = (b"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"original.eml\"\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\n" + original)
    if not attached.endswith(b"\n"):
        attached += b"\r\n"
    return (head + b"\r\n\r\nThis is a MIME message.\r\n--" + b + b"\r\n" + text_part + b"\r\n--" + b + b"\r\n"
            + attached + b"--" + b + b"--\r\n")


def _encode_subject(subject: str) -> str:
    from email.header import Header

    return Header(_clean(subject), "utf-8").encode()
