"""The demo IMAP server's wire format: reading a command's arguments and writing response data.

Kept apart from the mailboxes and the session so that the IMAP syntax -
atoms, quoted strings, literals and lists (:class:`Args`), sequence sets,
flag lists, FETCH items, dates, UID sets - is read and written in one place,
and so that a command handler can say BAD or NO (:class:`Bad`,
:class:`No`) or end the connection (:class:`Gone`) without knowing how.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Union

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CANONICAL_FLAGS = {f.upper(): f for f in SYSTEM_FLAGS}
_BODY_ITEM = re.compile(r"(BODY(?:\.PEEK)?)\[([A-Z.]*)\](?:<(\d{1,10})\.(\d{1,10})>)?")
_DATE = re.compile(r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")

Token = Union[str, bytes, list["Token"]]
"""A command argument: an atom or quoted string (str), a literal (bytes), or a parenthesised list."""


def imap_date(when: datetime) -> str:
    """An INTERNALDATE: ``" 7-Mar-2024 09:15:00 +0100"``."""
    return f"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} {when:%H:%M:%S} {when:%z}"


def parse_date(text: str) -> datetime | None:
    """An APPEND date-time (RFC 3501 date-time), or None when it is not one."""
    match = _DATE.fullmatch(text)
    if match is None or match.group(2).capitalize() not in MONTHS:
        return None
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    try:
        return datetime(int(year), MONTHS.index(month.capitalize()) + 1, int(day), int(hh), int(mm), int(ss),
                        tzinfo=timezone(offset))
    except ValueError:
        return None


def quote(text: str) -> str:
    """A quoted string for a response."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Iterable[int]) -> str:
    """UIDs as a compact set in the given order, for COPYUID: ``[4, 5, 6, 9]`` -> ``"4:6,9"``."""
    runs: list[list[int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


# --- answering BAD or NO, ending the connection ---------------------------------------


class Bad(Exception):
    """The command is not understood: tagged BAD with this text."""


class No(Exception):
    """The command cannot be done: tagged NO, with a response code."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Gone(Exception):
    """The connection is over (the client left, or the session was ended)."""


# --- reading a command's arguments --------------------------------------------------------


@dataclass
class Command:
    segments: list[bytes]  # the command's text, split where literals go
    literals: list[bytes]  # literals[i] comes after segments[i]


class Args:
    """A cursor over a command's arguments: atoms, quoted strings, literals and lists."""

    def __init__(self, command: Command) -> None:
        self.segments = command.segments
        self.literals = command.literals
        self.index = 0  # the segment being read
        self.pos = 0

    @property
    def _text(self) -> bytes:
        return self.segments[self.index]

    def _skip_spaces(self) -> None:
        while self.pos < len(self._text) and self._text[self.pos] == 0x20:
            self.pos += 1

    def more(self) -> bool:
        """Whether another argument follows."""
        self._skip_spaces()
        return self.pos < len(self._text) or self.index < len(self.literals)

    def end(self) -> None:
        if self.more():
            raise Bad("too many arguments")

    def next_is_list(self) -> bool:
        return self.more() and self.pos < len(self._text) and self._text[self.pos] == 0x28

    def token(self, depth: int = 0) -> Token:
        self._skip_spaces()
        text = self._text
        if self.pos >= len(text):
            if self.index >= len(self.literals):
                raise Bad("an argument is missing")
            literal = self.literals[self.index]
            self.index += 1
            self.pos = 0
            return literal
        c = text[self.pos]
        if c == 0x28:  # (
            if depth > 20:
                raise Bad("lists nested too deeply")
            self.pos += 1
            items: list[Token] = []
            while True:
                self._skip_spaces()
                if self.pos < len(self._text) and self._text[self.pos] == 0x29:  # )
                    self.pos += 1
                    return items
                if not self.more():
                    raise Bad("a list without its closing parenthesis")
                items.append(self.token(depth + 1))
        if c == 0x22:  # "
            return self._quoted()
        return self._atom()

    def _quoted(self) -> str:
        text = self._text
        out = bytearray()
        i = self.pos + 1
        while i < len(text):
            ch = text[i]
            if ch == 0x5C:  # backslash
                if i + 1 >= len(text) or text[i + 1] not in b'"\\':
                    raise Bad("a bad escape in a quoted string")
                out.append(text[i + 1])
                i += 2
                continue
            if ch == 0x22:
                self.pos = i + 1
                return out.decode("utf-8", errors="replace")
            out.append(ch)
            i += 1
        raise Bad("a quoted string without its closing quote")

    def _atom(self) -> str:
        """An atom; a ``[...]`` section in it may hold spaces and parentheses (``BODY[HEADER]``)."""
        text = self._text
        start = i = self.pos
        depth = 0
        while i < len(text):
            ch = text[i]
            if ch == 0x5B:
                depth += 1
            elif ch == 0x5D and depth:
                depth -= 1
            elif depth == 0 and ch in b' ()"{':
                break
            elif ch < 0x20 or ch == 0x7F:
                raise Bad("a control character in an argument")
            i += 1
        if depth:
            raise Bad("a [ without its ]")
        if i == start:
            raise Bad(f"unexpected {chr(text[i])!r}")
        self.pos = i
        return text[start:i].decode("utf-8", errors="replace")

    def string(self) -> str:
        """An astring: an atom, a quoted string or a literal, as text."""
        value = self.token()
        if isinstance(value, list):
            raise Bad("a string expected, not a list")
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value

    def atom(self) -> str:
        value = self.token()
        if not isinstance(value, str):
            raise Bad("an atom expected")
        return value

    def literal(self) -> bytes:
        value = self.token()
        if not isinstance(value, bytes):
            raise Bad("a literal expected")
        return value

    def rest(self) -> list[Token]:
        out: list[Token] = []
        while self.more():
            out.append(self.token())
        return out


# --- FETCH items, sequence sets, flags ---------------------------------------------------------------------


@dataclass(frozen=True)
class FetchItem:
    name: str  # what the response calls it: UID, FLAGS, BODY[HEADER]<0>, RFC822...
    part: str = ""  # for content: "" (whole), "HEADER" or "TEXT"
    sets_seen: bool = False
    partial: tuple[int, int] | None = None


_SIMPLE_ITEMS = {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"}
_RFC822_ITEMS = {"RFC822": FetchItem("RFC822", "", True), "RFC822.HEADER": FetchItem("RFC822.HEADER", "HEADER"),
                 "RFC822.TEXT": FetchItem("RFC822.TEXT", "TEXT", True)}


def parse_sequence_set(text: str, largest: int) -> list[tuple[int, int]]:
    """A sequence set (``1:3,7,9:*``) as inclusive ranges; ``*`` is *largest*."""

    def number(part: str) -> int:
        if part == "*":
            return largest
        if not part.isdigit() or part.startswith("0") or len(part) > 10 or int(part) > 0xFFFFFFFF:
            raise Bad(f"invalid sequence set {text[:40]!r}")
        return int(part)

    ranges: list[tuple[int, int]] = []
    for piece in text.split(","):
        low_text, sep, high_text = piece.partition(":")
        low = number(low_text)
        high = number(high_text) if sep else low
        ranges.append((min(low, high), max(low, high)))
    return ranges


def parse_flags(value: Token | Sequence[Token]) -> list[str]:
    """A flag list (or the flags of STORE without parentheses): system flags in their usual case, keywords."""
    items = value if isinstance(value, list | tuple) else [value]
    flags: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise Bad("a flag expected")
        if item.startswith("\\"):
            canonical = _CANONICAL_FLAGS.get(item.upper())
            if canonical is None:
                raise Bad(f"unknown system flag {item[:40]}")
            flags.append(canonical)
        elif any(c in item for c in "[]%*\\") or not item.isprintable():
            raise Bad(f"invalid keyword {item[:40]!r}")
        else:
            flags.append(item)
    return flags


def parse_fetch_items(value: Token) -> list[FetchItem]:
    """FETCH's data items: one item, a list, or the macro FAST."""
    raw = value if isinstance(value, list) else [value]
    out: list[FetchItem] = []
    for item in raw:
        if not isinstance(item, str):
            raise Bad("a FETCH item expected")
        name = item.upper()
        if name == "FAST":
            out += [FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE")]
        elif name in _SIMPLE_ITEMS:
            out.append(FetchItem(name))
        elif name in _RFC822_ITEMS:
            out.append(_RFC822_ITEMS[name])
        elif (body := _BODY_ITEM.fullmatch(name)) is not None and body.group(2) in ("", "HEADER", "TEXT"):
            peek, part = body.group(1) == "BODY.PEEK", body.group(2)
            partial = (int(body.group(3)), int(body.group(4))) if body.group(3) is not None else None
            label = f"BODY[{part}]" + (f"<{partial[0]}>" if partial is not None else "")
            out.append(FetchItem(label, part, not peek, partial))
        else:
            raise Bad(f"FETCH item {item[:40]} is not served by the demo server")
    if not out:
        raise Bad("FETCH wants at least one item")
    return out
