"""Reading IMAP responses (RFC 3501 / RFC 9051): untrusted bytes in, plain values or an explained error out.

A response arrives as text pieces with literals between them (``{n}`` ends a
piece, then n octets follow).  :func:`parse_response` turns the pieces into a
:class:`Response`; :func:`values` turns a parenthesised list into nested
Python lists of ``str`` (atoms, numbers, quoted strings), ``bytes`` (literals)
and ``None`` (NIL).  Anything that is not IMAP raises
:class:`~pop3gui.core.errors.MailboxProtocolError`, never another exception:
the parser is fuzzed.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Union

from pop3gui.core.errors import MailboxProtocolError

Value = Union[str, bytes, None, list["Value"]]

#: The literal a piece of response text announces at its end: ``{12}``, ``{12+}`` or ``~{12}``.
LITERAL_AT_END = re.compile(rb"~?\{(\d{1,20})\+?\}\r?\n?$")

_STATUS = ("OK", "NO", "BAD", "BYE", "PREAUTH")
_ATOM_END = b" ()[]{\"\r\n"
_MAX_DEPTH = 40


class LiteralBody:
    """Stands for a literal that went to a sink (a message body) rather than into memory."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"LiteralBody({self.size})"


@dataclass
class Response:
    """One server response.

    ``tag`` is ``"*"`` (untagged), ``"+"`` (continuation) or a command's tag.
    For status responses ``kind`` is OK/NO/BAD/BYE/PREAUTH, ``code`` the
    response code's name (``UIDVALIDITY``), ``code_args`` the rest of it and
    ``text`` the human part.  For ``* 12 EXISTS`` ``number`` is 12 and
    ``kind`` EXISTS; for other untagged data ``kind`` is its name and
    ``data`` the values after it.
    """

    tag: str
    kind: str
    number: int | None = None
    code: str = ""
    code_args: str = ""
    text: str = ""
    data: list[Value] = field(default_factory=list)

    @property
    def is_status(self) -> bool:
        return self.kind in _STATUS


def protocol_error(where: str, what: str, sample: bytes = b"") -> MailboxProtocolError:
    shown = sample[:120].decode("utf-8", errors="replace").translate({13: " ", 10: " "})
    return MailboxProtocolError(
        f"The IMAP server {where} sent a response that is not valid IMAP: {what}"
        + (f" ({shown!r})" if shown else ""),
        cause="The server broke the IMAP protocol (RFC 3501); what it says next cannot be trusted.",
        fix="Nothing is lost: the messages stay on the server. If it keeps happening, try the server with "
        "another mail client and report it to the provider.",
    )


def parse_response(pieces: list[bytes], literals: list[bytes | LiteralBody], where: str) -> Response:
    """A whole response: *pieces* of text with ``literals[i]`` after ``pieces[i]``."""
    if len(pieces) != len(literals) + 1:
        raise protocol_error(where, "literals out of step with the response text")
    first = pieces[0].rstrip(b"\r\n")
    tag, sep, rest = first.partition(b" ")
    if not tag:
        raise protocol_error(where, "empty response", first)
    if tag == b"+":
        return Response("+", "CONTINUE", text=_text(rest if sep else b""))
    if not sep:
        raise protocol_error(where, "a response without data", first)
    tag_text = tag.decode("ascii", errors="replace")
    if tag != b"*" and not _is_tag(tag):
        raise protocol_error(where, "a response with an invalid tag", first)
    word, _, after = rest.partition(b" ")
    upper = word.upper()
    if upper.isdigit() and tag == b"*":
        number = _number(word, where)
        kind, _, tail = after.partition(b" ")
        kind_text = kind.upper().decode("ascii", errors="replace")
        if not kind_text or not kind_text.isalpha():
            raise protocol_error(where, "untagged data without a name", first)
        if kind_text in _STATUS:  # "* 3 OK": neither a status nor message data
            raise protocol_error(where, "a status after a message number", first)
        data: list[Value] = []
        if tail or len(pieces) > 1:
            data = values([tail, *pieces[1:]], literals, where)
        return Response("*", kind_text, number=number, data=data)
    kind_text = upper.decode("ascii", errors="replace")
    if kind_text in _STATUS:
        if len(pieces) > 1:
            raise protocol_error(where, "a literal inside a status response", first)
        code, args, text = _response_code(after, where)
        return Response(tag_text, kind_text, code=code, code_args=args, text=text)
    if tag != b"*":
        raise protocol_error(where, f"a tagged response that is not OK, NO or BAD ({kind_text[:20]})", first)
    if not kind_text or not all(c.isalnum() or c in "-._" for c in kind_text):
        raise protocol_error(where, "untagged data without a name", first)
    data = values([after, *pieces[1:]], literals, where) if (after or len(pieces) > 1) else []
    return Response("*", kind_text, data=data)


def _is_tag(tag: bytes) -> bool:
    return all(33 <= c < 127 and c not in b"(){%*\"\\+" for c in tag)


def _number(word: bytes, where: str) -> int:
    if not word.isdigit() or len(word) > 10:
        raise protocol_error(where, "a number out of range", word)
    return int(word)


def _text(raw: bytes) -> str:
    text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else "?" for c in text[:501])
    return text if len(text) <= 500 else text[:500] + "..."


def _response_code(raw: bytes, where: str) -> tuple[str, str, str]:
    """``[CODE args] text`` -> (CODE, args, text); no code gives ("", "", text)."""
    raw = raw.rstrip(b"\r\n")
    if not raw.startswith(b"["):
        return "", "", _text(raw)
    end = raw.find(b"]")
    if end < 0:
        raise protocol_error(where, "a response code without its closing bracket", raw)
    name, _, args = raw[1:end].partition(b" ")
    return (name.upper().decode("ascii", errors="replace"), args.decode("utf-8", errors="replace"),
            _text(raw[end + 1:].lstrip(b" ")))


class _Reader:
    """A cursor over the pieces and literals of one response."""

    def __init__(self, pieces: list[bytes], literals: list[bytes | LiteralBody], where: str) -> None:
        self.pieces = pieces
        self.literals = literals
        self.where = where
        self.index = 0
        self.text = _strip_literal_marker(pieces[0])
        self.pos = 0

    def error(self, what: str) -> MailboxProtocolError:
        return protocol_error(self.where, what, self.text[self.pos:self.pos + 60])

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == 32:
            self.pos += 1

    def at_end_of_piece(self) -> bool:
        return self.pos >= len(self.text)

    def next_literal(self) -> bytes | LiteralBody:
        if self.index >= len(self.literals):
            raise self.error("a literal announced but missing")
        literal = self.literals[self.index]
        self.index += 1
        self.text = _strip_literal_marker(self.pieces[self.index])
        self.pos = 0
        return literal

    def value(self, depth: int) -> Value:
        if depth > _MAX_DEPTH:
            raise self.error("lists nested too deeply")
        text = self.text
        if self.pos >= len(text):
            if self.index < len(self.literals):
                literal = self.next_literal()
                return literal if isinstance(literal, bytes) else b""  # a body: it went to its sink
            raise self.error("a value expected")
        c = text[self.pos]
        if c == 40:  # (
            self.pos += 1
            items: list[Value] = []
            while True:
                self.skip_spaces()
                if self.pos < len(self.text) and self.text[self.pos] == 41:  # )
                    self.pos += 1
                    return items
                if self.at_end_of_piece() and self.index >= len(self.literals):
                    raise self.error("a list without its closing parenthesis")
                items.append(self.value(depth + 1))
        if c == 34:  # "
            return self._quoted()
        if c == 123 or (c == 126 and text[self.pos + 1:self.pos + 2] == b"{"):  # { or ~{ ("~" alone is an atom)
            raise self.error("a literal in the middle of a line")
        return self._atom()

    def _quoted(self) -> str:
        text = self.text
        out = bytearray()
        i = self.pos + 1
        while i < len(text):
            ch = text[i]
            if ch == 92:  # backslash
                if i + 1 >= len(text) or text[i + 1] not in b"\"\\":
                    raise self.error("a bad escape in a quoted string")
                out.append(text[i + 1])
                i += 2
                continue
            if ch == 34:
                self.pos = i + 1
                return out.decode("utf-8", errors="replace")
            if ch in b"\r\n":
                break
            out.append(ch)
            i += 1
        raise self.error("a quoted string without its closing quote")

    def _atom(self) -> str:
        text = self.text
        start = self.pos
        i = start
        depth = 0
        while i < len(text):
            ch = text[i]
            if ch == 91:  # [ : section of BODY[...] or a response code, may hold spaces and parentheses
                depth += 1
            elif ch == 93 and depth:
                depth -= 1
            elif depth == 0 and ch in _ATOM_END:
                break
            elif ch < 32 or ch == 127:
                raise self.error("a control character in an atom")
            i += 1
        if depth:
            raise self.error("an unclosed [ in an atom")
        if i == start:
            raise self.error("an unexpected character")
        self.pos = i
        atom = text[start:i].decode("utf-8", errors="replace")
        return None if atom.upper() == "NIL" else atom  # type: ignore[return-value]


def _strip_literal_marker(piece: bytes) -> bytes:
    piece = piece.rstrip(b"\r\n")
    match = LITERAL_AT_END.search(piece)
    return piece[:match.start()] if match else piece


def values(pieces: list[bytes], literals: list[bytes | LiteralBody], where: str) -> list[Value]:
    """Every value of untagged data, in order (a FETCH gives one list, LIST three values...)."""
    reader = _Reader(pieces, literals, where)
    out: list[Value] = []
    while True:
        reader.skip_spaces()
        if reader.at_end_of_piece() and reader.index >= len(literals):
            return out
        out.append(reader.value(0))


def fetch_items(response: Response, where: str) -> dict[str, Value]:
    """A FETCH response's items by upper-case name: ``{"UID": "7", "RFC822.SIZE": "1200", "BODY[]": ...}``."""
    if not response.data or not isinstance(response.data[0], list):
        raise protocol_error(where, "a FETCH response without its item list")
    items = response.data[0]
    if len(items) % 2:
        raise protocol_error(where, "a FETCH item without its value")
    out: dict[str, Value] = {}
    for i in range(0, len(items), 2):
        name = items[i]
        if not isinstance(name, str):
            raise protocol_error(where, "a FETCH item name that is not an atom")
        out[name.upper()] = items[i + 1]
    return out


def number_of(value: Value, where: str, what: str) -> int:
    """A value that must be a non-negative 32-bit number (UID, size, UIDVALIDITY)."""
    if (not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 10
            or int(value) > 0xFFFFFFFF):
        raise protocol_error(where, f"{what} is not a number", str(value).encode()[:40])
    return int(value)


# --- sequence sets -------------------------------------------------------------------


def sequence_set(uids: list[int]) -> str:
    """Sorted UIDs as a compact set: ``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


# --- strings and folder names ------------------------------------------------------


def quoted(text: str) -> str:
    """A command argument as an IMAP quoted string (CR, LF and NUL are refused before we get here)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_folder(name: str) -> str:
    """A folder name in modified UTF-7 (RFC 3501, 5.1.3), as IMAP4rev1 servers expect it."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


_SHIFTED = re.compile(r"&([^-]*)-")


def decode_folder(name: str) -> str:
    """A folder name from the server in modified UTF-7 back to text; a malformed run is kept as it came."""

    def run(match: re.Match[str]) -> str:
        body = match.group(1)
        if not body:
            return "&"
        try:
            raw = base64.b64decode(body.replace(",", "/") + "=" * (-len(body) % 4), validate=True)
            return raw.decode("utf-16-be")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return match.group(0)

    return _SHIFTED.sub(run, name)
