"""A message as SMTP DATA, produced in blocks so a big message is never held whole.

The submitter streams a spooled message straight from its file: every line
ending becomes CRLF, a leading dot is doubled (RFC 5321 4.5.2), and the data
ends with CRLF "." CRLF.  Memory stays at a block or two, whatever the size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK = 256 * 1024
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class MessageSource:
    """Message bytes to submit: a short prefix (our trace line) and a file or in-memory body."""

    prefix: bytes = b""
    path: Path | None = None
    data: bytes = b""

    @classmethod
    def from_file(cls, path: Path, prefix: bytes = b"") -> MessageSource:
        return cls(prefix=prefix, path=path)

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageSource:
        return cls(data=data)

    def blocks(self) -> Iterator[bytes]:
        """The raw message, in blocks of at most BLOCK bytes (the prefix first)."""
        if self.prefix:
            yield self.prefix
        if self.path is None:
            for start in range(0, len(self.data), BLOCK):
                yield self.data[start:start + BLOCK]
            return
        with self.path.open("rb") as fh:
            while block := fh.read(BLOCK):
                yield block

    def is_ascii(self) -> bool:
        """Whether BODY=8BITMIME is needed (one pass over the file, block by block)."""
        return all(block.isascii() for block in self.blocks())

    def size(self) -> int:
        return len(self.prefix) + (self.path.stat().st_size if self.path is not None else len(self.data))


class DataEncoder:
    """Raw message bytes in, SMTP DATA out, one block at a time.

    Line endings are normalised across block boundaries (a CR at the end of a
    block waits for the next one) and dots are doubled wherever a line starts.
    """

    def __init__(self) -> None:
        self._at_line_start = True
        self._pending_cr = False

    def feed(self, block: bytes) -> bytes:
        if self._pending_cr:
            block, self._pending_cr = b"\r" + block, False
        if block.endswith(b"\r"):
            block, self._pending_cr = block[:-1], True
        if not block:
            return b""
        crlf = block.count(b"\r\n")
        if block.count(b"\r") != crlf or block.count(b"\n") != crlf:  # a bare CR or LF somewhere
            block = _LINE_END.sub(b"\r\n", block)
        if self._at_line_start and block.startswith(b"."):
            block = b"." + block
        block = block.replace(b"\n.", b"\n..")
        self._at_line_start = block.endswith(b"\n")
        return block

    def finish(self) -> bytes:
        """What ends the data: the last line's CRLF if it had none, then "." CRLF."""
        tail = b""
        if self._pending_cr:
            tail, self._pending_cr, self._at_line_start = b"\r\n", False, True
        if not self._at_line_start:
            tail += b"\r\n"
        return tail + b".\r\n"


def encode_whole(data: bytes) -> bytes:
    """All of a message as SMTP DATA in one go (tests and small notices)."""
    encoder = DataEncoder()
    return encoder.feed(data) + encoder.finish()
