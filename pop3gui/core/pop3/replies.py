"""Pure parsing of POP3 server lines, kept apart from the socket code.

Nothing here does I/O, so every rule about what a server may send is testable
on plain bytes, and the client module only deals with reading and writing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pop3gui.core.errors import (
    ConfigError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxInUseError,
    MailboxProtocolError,
)

#: RFC 2449 allows 512 octets; real servers overshoot with long -ERR texts,
#: so accept more, but never an unbounded amount.
MAX_STATUS_LINE = 4096

#: RFC 1939 allows 1..70 printable characters; some servers use longer ones,
#: which we accept up to this bound rather than refusing the mailbox.
MAX_UID_LENGTH = 512

_CRLF = b"\r\n"
_RESP_CODE = re.compile(r"^\[([^\]\s]*)\]\s?")
_TIMESTAMP = re.compile(r"<[^<>\s]+>")
_UID_CHARS = re.compile(r"^[\x21-\x7e]+$")


def show(line: bytes | str, limit: int = 80) -> str:
    """A line as it can safely go into an error message: truncated and repr'd."""
    if len(line) > limit:
        return repr(line[:limit]) + f"... ({len(line)} bytes)"
    return repr(line)


@dataclass(frozen=True)
class Reply:
    """One status line: ``ok`` for +OK, the text after it and any RFC 2449 code."""

    ok: bool
    text: str
    resp_code: str = ""

    @property
    def line(self) -> str:
        """The reply as the server wrote it, for messages and transcripts."""
        head = "+OK" if self.ok else "-ERR"
        return f"{head} {self.text}" if self.text else head


def parse_status(line: bytes, where: str = "") -> Reply:
    """Parse a single-line reply; anything but +OK/-ERR means the stream is broken."""
    server = f"The POP3 server {where}" if where else "The POP3 server"
    if len(line) > MAX_STATUS_LINE:
        raise MailboxProtocolError(
            f"{server} sent a reply line of {len(line)} bytes: {show(line)}",
            cause=f"A status line may be at most {MAX_STATUS_LINE} bytes; the server is"
            " not speaking POP3 or the connection is out of step.",
            fix="Check that the host and port belong to a POP3 server.",
            reply=show(line),
        )
    body = strip_eol(line)
    if body.startswith(b"+OK"):
        ok, rest = True, body[3:]
    elif body.startswith(b"-ERR"):
        ok, rest = False, body[4:]
    else:
        raise _malformed(line, server)
    if rest and not rest.startswith(b" "):
        raise _malformed(line, server)
    text = rest[1:].decode("utf-8", errors="replace")
    code = ""
    match = _RESP_CODE.match(text)
    if match:
        code = match.group(1).upper()
    return Reply(ok, text, code)


def _malformed(line: bytes, server: str) -> MailboxProtocolError:
    return MailboxProtocolError(
        f"{server} sent a line that is not +OK or -ERR: {show(line)}",
        cause="The server is not speaking POP3, or the connection got out of step.",
        fix="Check that the host and port belong to a POP3 server"
        " (995 for TLS, 110 for plain or STLS).",
        reply=show(line),
    )


def strip_eol(line: bytes) -> bytes:
    """The line without its CRLF or bare LF."""
    if line.endswith(_CRLF):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def unstuff(line: bytes) -> bytes | None:
    """One line of multi-line data, CRLF-normalised and dot-unstuffed; None at the end.

    Bare LF endings become CRLF so the stored message is canonical whatever the
    server sends; a lone CR inside a line is message data and is left alone.
    """
    if line.endswith(_CRLF):
        body = line[:-2]
    elif line.endswith(b"\n"):
        body = line[:-1]
    else:
        body = line
    if body == b".":
        return None
    if body.startswith(b"."):
        body = body[1:]
    return body + _CRLF


def end_of_long_line(piece: bytes) -> bytes:
    """The last piece of a line that came in pieces: only its line ending is normalised."""
    if piece.endswith(_CRLF):
        return piece
    return piece[:-1] + _CRLF


def parse_stat(reply: Reply, where: str = "") -> tuple[int, int]:
    """'+OK count octets' -> (count, octets)."""
    parts = reply.text.split()
    if len(parts) < 2:
        raise _bad_line("STAT", reply.line, where)
    count = _number(parts[0], "STAT", reply.line, where, zero=True)
    return count, _number(parts[1], "STAT", reply.line, where, zero=True)


def parse_list_line(line: bytes, where: str = "") -> tuple[int, int]:
    """'n octets' from a LIST listing; RFC 1939 allows text after the size."""
    text = strip_eol(line).decode("utf-8", errors="replace")
    parts = text.split()
    if len(parts) < 2:
        raise _bad_line("LIST", text, where)
    return _number(parts[0], "LIST", text, where), _number(
        parts[1], "LIST", text, where, zero=True
    )


def parse_uidl_line(line: bytes, where: str = "") -> tuple[int, str]:
    """'n uid' from a UIDL listing; a UID with spaces or control bytes is refused."""
    text = strip_eol(line).decode("utf-8", errors="replace")
    parts = text.split(" ")
    if len(parts) != 2 or not parts[1]:
        raise _bad_line("UIDL", text, where)
    number = _number(parts[0], "UIDL", text, where)
    uid = parts[1]
    if len(uid) > MAX_UID_LENGTH or not _UID_CHARS.match(uid):
        raise _bad_line("UIDL", text, where)
    return number, uid


def parse_capa_lines(lines: list[bytes]) -> dict[str, list[str]]:
    """CAPA listing -> {'SASL': ['PLAIN', 'LOGIN'], 'UIDL': [], ...}."""
    caps: dict[str, list[str]] = {}
    for raw in lines:
        words = strip_eol(raw).decode("utf-8", errors="replace").split()
        if words:
            caps[words[0].upper()] = words[1:]
    return caps


def _number(
    word: str, command: str, line: str, where: str, *, zero: bool = False
) -> int:
    if not word.isascii() or not word.isdigit():
        raise _bad_line(command, line, where)
    value = int(word)
    if value == 0 and not zero:
        raise _bad_line(command, line, where)
    return value


def _bad_line(command: str, line: str, where: str) -> MailboxProtocolError:
    server = f"The POP3 server {where}" if where else "The POP3 server"
    return MailboxProtocolError(
        f"{server} sent a malformed {command} line: {show(line)}",
        cause=f"The {command} answer does not have the form RFC 1939 requires.",
        fix="Report this to the mail provider; the mailbox cannot be read safely"
        " while the server answers like this.",
        reply=show(line),
    )


def greeting_timestamp(greeting: str) -> str | None:
    """The APOP timestamp '<...>' in the greeting, or None if the server has none."""
    match = _TIMESTAMP.search(greeting)
    return match.group(0) if match else None


def apop_digest(timestamp: str, password: str) -> str:
    """RFC 1939 APOP digest: md5 of timestamp + shared secret, in lower-case hex."""
    return hashlib.md5((timestamp + password).encode("utf-8")).hexdigest()


def check_argument(name: str, value: str) -> str:
    """Refuse CR, LF and NUL in a command argument: they would inject a command."""
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(
            "contains a line break or NUL character and cannot be sent to the POP3 server",
            key=name,
            cause="A line break in a POP3 command would start a second, different command.",
            fix=f"Remove the line break from the {name}.",
        )
    return value


# RFC 2449 response codes that are not a wrong password: (cause, fix, retrying helps).
_RESP_CODE_MEANINGS: dict[str, tuple[str, str, bool]] = {
    "LOGIN-DELAY": ("The provider limits how often the mailbox may be checked.",
                    "Check less often (raise the poll interval); this retries later.", True),
    "SYS/TEMP": ("The mail provider reports a temporary problem on its side.",
                 "Nothing to do here; the download is retried later.", True),
    "SYS/PERM": ("The mail provider reports a permanent problem with this mailbox.",
                 "Contact the mail provider; retrying will not help.", False),
}


def error_for(
    command: str, reply: Reply, where: str, *, login: bool = False
) -> MailboxCommandError:
    """The error a -ERR reply means, chosen by its RFC 2449 response code.

    At login any -ERR without a more specific code is an authentication failure;
    [IN-USE], [LOGIN-DELAY] and [SYS/TEMP] are not, because retrying later helps.
    """
    code = reply.resp_code
    if code == "IN-USE":
        return MailboxInUseError(
            f"The mailbox on {where} is in use by another client: {reply.line}",
            cause="Another mail program (for example a phone or Outlook) has the"
            " mailbox open, and the server lets only one client in at a time.",
            fix="Close the other mail program or wait until it disconnects;"
            " the download is retried automatically.",
            reply=reply.line,
            resp_code=code,
        )
    if code not in _RESP_CODE_MEANINGS and (login or code == "AUTH"):
        return MailboxAuthError(
            f"The POP3 server {where} refused the login: {reply.line}",
            cause="The user name or password is wrong, or the provider requires an"
            " app password or OAuth instead of the normal password.",
            fix="Check the user name and password; if the provider offers app"
            " passwords (for example Gmail, Outlook.com, Yahoo), create one and use it.",
            reply=reply.line,
            resp_code=code,
        )
    cause, fix, temporary = _RESP_CODE_MEANINGS.get(code, (
        "The server answered -ERR to this command.",
        "If this keeps happening, contact the mail provider with this message.",
        True,
    ))
    err = MailboxCommandError(f"The POP3 server {where} refused {command}: {reply.line}", cause=cause, fix=fix,
                           reply=reply.line, resp_code=code)
    err.temporary = temporary
    return err
