"""Is this the same message? A fingerprint of a message as its author wrote it.

Duplicate suppression must never drop a distinct message: real mail reuses
Message-IDs (scanners, web forms, newsletter tools, broken mailers), so a
Message-ID alone says little. Two copies are the same message only when the
body and every header field the originator wrote are the same; what servers add
on the way (trace lines, envelope copies, scanner verdicts, mailbox flags) is
left out, so one message fetched from two mailboxes, or re-listed by the ISP
under a new UIDL, still matches itself.

Normalisation is deliberately small: line endings (CRLF/LF), header folding
and runs of blanks inside a header value, header-name case, and blank lines at
the end of the body. Anything else that differs makes the copies distinct: a
duplicate is a nuisance, a dropped message is a loss.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

# Header fields that servers add or rewrite on the way; everything else counts.
HOP_FIELDS = frozenset({
    "received", "x-received", "return-path", "delivered-to", "x-original-to", "envelope-to",
    "x-envelope-to", "x-envelope-from", "x-rcpt-to", "x-delivered-to", "x-original-arrival-time",
    "authentication-results", "received-spf", "dkim-signature", "domainkey-signature",
    "x-google-dkim-signature", "x-uidl", "status", "x-status", "x-keywords", "x-mozilla-status",
    "x-mozilla-status2", "x-mozilla-keys", "lines", "content-length",  # the last two: mbox artefacts
})
# Families of scanner, relay and mailbox-server fields, by prefix.
HOP_FIELD_PREFIXES = (
    "arc-", "x-spam", "x-virus", "x-amavis", "x-ms-exchange-", "x-forefront-", "x-microsoft-antispam",
    "x-mimecast-", "x-proofpoint-", "x-ironport-", "x-barracuda-", "x-policyd-", "x-gm-", "x-google-",
    "x-sieve", "x-dspam", "x-rspamd", "x-quarantine",
)

_READ_CHUNK = 1 << 16
_HEADER_CAP = 4 << 20  # a header block longer than this is hashed as body text, whole
_BLANKS = re.compile(rb"[ \t]+")


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def is_hop_field(name: str) -> bool:
    """True for a header field a server adds on the way, not the message's author."""
    lowered = name.strip().lower()
    return lowered in HOP_FIELDS or lowered.startswith(HOP_FIELD_PREFIXES)


def message_fingerprint(chunks: Iterable[bytes]) -> str:
    """The hex SHA-256 of a message's author-written content, read chunk by chunk.

    The result does not depend on how the message is cut into chunks.
    """
    digest = hashlib.sha256()
    header = bytearray()
    in_header = True
    body = _BodyNormaliser(digest)
    for chunk in _lf_lines(chunks):
        if not in_header:
            body.feed(chunk)
            continue
        start = max(0, len(header) - 1)
        header += chunk
        end = 0 if header.startswith(b"\n") else header.find(b"\n\n", start)
        if 0 <= end < _HEADER_CAP:
            rest = bytes(header[end + (1 if end == 0 else 2):])
            _hash_header(digest, bytes(header[:end]))
            in_header = False
            body.feed(rest)
        elif len(header) >= _HEADER_CAP:
            _hash_header(digest, b"")
            in_header = False
            body.feed(bytes(header))
    if in_header:  # no body at all
        _hash_header(digest, bytes(header))
    body.finish()
    return digest.hexdigest()


def file_chunks(path: Path) -> Iterator[bytes]:
    """A spooled message, chunk by chunk, for :func:`message_fingerprint`."""
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            yield chunk


def _lf_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream with CRLF turned into LF, a CR split across chunks included."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        carry = b""
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        if data:
            yield data.replace(b"\r\n", b"\n")
    if carry:
        yield carry


def _hash_header(digest: _Digest, block: bytes) -> None:
    digest.update(b"header\0")
    for name, value in _fields(block):
        if is_hop_field(name.decode("ascii", "replace")):
            continue
        digest.update(name.strip().lower() + b":" + _BLANKS.sub(b" ", value).strip() + b"\n")
    digest.update(b"body\0")


def _fields(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(name, unfolded value) of each field; a line that is no field is kept whole as a value."""
    name: bytes | None = None
    value = bytearray()
    for line in block.split(b"\n"):
        if line[:1] in (b" ", b"\t") and name is not None:
            value += b" " + line
            continue
        if name is not None:
            yield name, bytes(value)
        head, colon, tail = line.partition(b":")
        if colon and head and b" " not in head.strip() and b"\t" not in head:
            name, value = head, bytearray(tail)
        else:
            name, value = b"", bytearray(line)
    if name is not None:
        yield name, bytes(value)


class _BodyNormaliser:
    """Feeds the body to the digest, holding back trailing newlines until more text follows."""

    def __init__(self, digest: _Digest) -> None:
        self._digest = digest
        self._pending_newlines = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        text = data.rstrip(b"\n")
        if not text:
            self._pending_newlines += len(data)
            return
        if self._pending_newlines:
            self._digest.update(b"\n" * self._pending_newlines)
        self._digest.update(text)
        self._pending_newlines = len(data) - len(text)

    def finish(self) -> None:
        """Trailing blank lines are not content: they stay unhashed."""
        self._pending_newlines = 0
