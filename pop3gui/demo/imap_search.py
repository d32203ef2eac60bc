"""SEARCH for the demo IMAP server: search keys read into a test of (sequence number, message).

Kept apart from the session's commands because the search language is a
small parser of its own: flags, keywords, UID and sequence sets, sizes,
NOT, OR and parenthesised lists (no text or dates).
"""

from __future__ import annotations

from collections.abc import Callable

from pop3gui.demo.imap_connection import Connection
from pop3gui.demo.imap_store import Message
from pop3gui.demo.imap_wire import Bad, Token, parse_sequence_set

Matcher = Callable[[int, Message], bool]

_FLAG_KEYS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft", "FLAGGED": "\\Flagged",
              "SEEN": "\\Seen"}


class SearchKeys:
    """SEARCH keys as a test of (sequence number, message): flags, keywords, sets, sizes, NOT, OR, lists."""

    def __init__(self, session: Connection, tokens: list[Token]) -> None:
        self.session = session
        self.tokens = tokens
        self.pos = 0

    def all(self) -> Matcher:
        keys = []
        while self.pos < len(self.tokens):
            keys.append(self.key())
        return lambda seq, m: all(k(seq, m) for k in keys)

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise Bad("a search key is incomplete")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def text(self) -> str:
        token = self.take()
        if isinstance(token, list):
            raise Bad("a search argument expected, not a list")
        return token.decode("utf-8", errors="replace") if isinstance(token, bytes) else token

    def key(self) -> Matcher:
        token = self.take()
        if isinstance(token, list):
            return SearchKeys(self.session, token).all()
        if isinstance(token, bytes):
            raise Bad("a search key expected")
        name = token.upper()
        session = self.session
        if name == "ALL":
            return lambda seq, m: True
        if name in _FLAG_KEYS:
            flag = _FLAG_KEYS[name]
            return lambda seq, m: flag in m.flags
        if name.startswith("UN") and name[2:] in _FLAG_KEYS:
            flag = _FLAG_KEYS[name[2:]]
            return lambda seq, m: flag not in m.flags
        if name == "RECENT":
            return lambda seq, m: m.uid in session.recent
        if name == "OLD":
            return lambda seq, m: m.uid not in session.recent
        if name == "NEW":
            return lambda seq, m: m.uid in session.recent and "\\Seen" not in m.flags
        if name in ("KEYWORD", "UNKEYWORD"):
            keyword = self.text()
            present = name == "KEYWORD"
            return lambda seq, m: (keyword in m.flags) == present
        if name in ("LARGER", "SMALLER"):
            size_text = self.text()
            if not size_text.isdigit():
                raise Bad(f"{name} wants a number")
            size = int(size_text)
            return (lambda seq, m: len(m.data) > size) if name == "LARGER" else (lambda seq, m: len(m.data) < size)
        if name == "NOT":
            inner = self.key()
            return lambda seq, m: not inner(seq, m)
        if name == "OR":
            left, right = self.key(), self.key()
            return lambda seq, m: left(seq, m) or right(seq, m)
        if name == "UID":
            view = session.view
            ranges = parse_sequence_set(self.text(), view[-1] if view else 0)
            return lambda seq, m: any(low <= m.uid <= high for low, high in ranges)
        if name[:1].isdigit() or name[:1] == "*":
            ranges = parse_sequence_set(token, len(session.view))
            return lambda seq, m: any(low <= seq <= high for low, high in ranges)
        raise Bad(f"search key {token[:40]} is not served by the demo server")
