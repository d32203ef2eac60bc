"""RFC 1870 SIZE: what the local server announces it takes, and a message's size as it counts it.

Known before a byte is sent, so a message over the limit can stay on the
POP3/IMAP server with one event instead of being sent whole and refused.
"""

from __future__ import annotations

import re

from pop3gui.core.smtp.data import MessageSource

__all__ = ["size_limit", "wire_size"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


def size_limit(announced: str | None) -> int | None:
    """The limit in a SIZE announcement (RFC 1870): None when SIZE is not offered, 0 when it names no limit."""
    if announced is None:
        return None
    value = announced.strip().split(" ", 1)[0]
    return int(value) if value.isdigit() else 0


def wire_size(message: MessageSource) -> int:
    """The size RFC 1870 counts: line endings as CRLF, the last line ended, no dot-stuffing, no final dot.

    What the server compares with its SIZE limit; one pass over a spooled message.
    """
    size = 0
    pending_cr = False
    ends_line = True
    for block in message.blocks():
        if pending_cr:
            block, pending_cr = b"\r" + block, False
        if block.endswith(b"\r"):
            block, pending_cr = block[:-1], True
        if not block:
            continue
        crlf = block.count(b"\r\n")
        if block.count(b"\r") != crlf or block.count(b"\n") != crlf:  # a bare CR or LF becomes CRLF
            size += len(_LINE_END.sub(b"\r\n", block))
        else:
            size += len(block)
        ends_line = block.endswith(b"\n")
    if pending_cr or not ends_line:
        size += 2
    return size
