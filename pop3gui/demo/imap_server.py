"""A small asyncio IMAP4rev1 server for the demo sandbox (RFC 3501, with UIDPLUS, MOVE and IDLE).

It serves in-memory mailboxes, each a set of folders, on 127.0.0.1 (port 0:
read :attr:`DemoImapServer.port` after :meth:`~DemoImapServer.start`), so that
``pop3gui demo`` shows an IMAP account with nothing installed - no Dovecot.
Like :mod:`pop3gui.demo.pop3_server` it is correct rather than clever:

- logging in: LOGIN and AUTHENTICATE PLAIN with a password; a mailbox added
  with ``oauth=True`` only with an OAuth2 access token over AUTHENTICATE
  XOAUTH2 or OAUTHBEARER (RFC 7628), the server's *token_check* saying whose
  a token is.  The initial response comes on the command line (SASL-IR, RFC
  4959) or after the ``+``; a refused token is answered as Dovecot does (a
  ``+`` carrying the error as base64 JSON, then ``NO [AUTHENTICATIONFAILED]``).
  Given a TLS context the server offers STARTTLS, with LOGINDISABLED until
  TLS is on (or TLS from the first byte with ``implicit_tls``); without one,
  plaintext on loopback, like the demo's POP3 server;
- folders: LIST and LSUB (``*`` and ``%``), CREATE (parents too), DELETE,
  SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND; ``/`` separates levels, INBOX is
  any case, names travel in modified UTF-7; every folder has its UIDVALIDITY
  (a renumbered or re-created folder gets a new one) and UIDNEXT;
- SELECT and EXAMINE; FETCH (UID, FLAGS, INTERNALDATE, RFC822.SIZE, BODY[] /
  BODY.PEEK[] whole or HEADER / TEXT, with a partial range, RFC822,
  RFC822.HEADER, RFC822.TEXT, FAST), STORE, SEARCH (flags, keywords, UID and
  sequence sets, sizes, NOT, OR, lists), COPY and MOVE (RFC 6851), each also
  as a UID command; EXPUNGE and UID EXPUNGE, COPYUID and APPENDUID (UIDPLUS,
  RFC 4315); CLOSE, UNSELECT, CHECK, NOOP, LOGOUT; literals, LITERAL+ too;
- IDLE (RFC 2177): a session idling on a folder hears ``* n EXISTS`` as soon
  as mail arrives there (:meth:`DemoImapServer.add_message`, an APPEND, a COPY
  or MOVE by another session) and ``* n EXPUNGE`` when another session
  removes messages.

Several sessions may use a mailbox at once, as with any IMAP server.  Each
keeps its own view of the selected folder (its sequence numbers) and hears of
other sessions' changes only where RFC 3501 (7.4.1) allows: never an EXPUNGE
while answering FETCH, STORE or SEARCH.  A folder that is deleted or
renumbered under a session ends that session with ``* BYE``, as Dovecot does.

Not served (answered BAD or NO): ENVELOPE, BODYSTRUCTURE and body parts,
RENAME, searching text or dates.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import itertools
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from pop3gui.core.imap.parse import decode_folder, encode_folder
from pop3gui.demo.pop3_server import Login, error_challenge, parse_bearer, to_crlf

DELIMITER = "/"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
CAPABILITIES = ("IMAP4rev1", "LITERAL+", "SASL-IR", "UIDPLUS", "MOVE", "IDLE", "UNSELECT", "CHILDREN")
AUTH_MECHANISMS = ("PLAIN", "XOAUTH2", "OAUTHBEARER")
MAX_LINE = 16 * 1024  # a command line; a SASL response carrying a token fits
MAX_COMMAND = 64 * 1024 * 1024  # a whole command with its literals (an APPENDed message)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CANONICAL_FLAGS = {f.upper(): f for f in SYSTEM_FLAGS}
_LITERAL = re.compile(rb"\{(\d{1,10})(\+?)\}\r?\n\Z")
_TAG = re.compile(r'[^\x00-\x20\x7f(){%*"\\+]+')
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


# --- the mailboxes ----------------------------------------------------------------


@dataclass(eq=False)
class _Message:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)
    internal_date: datetime = field(default_factory=lambda: datetime.now(timezone.utc).astimezone())

    def header(self) -> bytes:
        head, sep, _ = self.data.partition(b"\r\n\r\n")
        return head + sep

    def text(self) -> bytes:
        _, sep, body = self.data.partition(b"\r\n\r\n")
        return body if sep else b""


@dataclass(eq=False)
class _Folder:
    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: list[_Message] = field(default_factory=list)  # in UID order
    recent: set[int] = field(default_factory=set)  # UIDs no read-write session has been told of yet
    subscribed: bool = True
    alive: bool = True  # False once deleted or renumbered: sessions that have it selected end

    def add(self, data: bytes, flags: Iterable[str] = (), when: datetime | None = None) -> _Message:
        message = _Message(self.uidnext, data, set(flags) - {"\\Recent"})
        if when is not None:
            message.internal_date = when
        self.uidnext += 1
        self.messages.append(message)
        self.recent.add(message.uid)
        return message

    def remove(self, uids: Iterable[int]) -> None:
        gone = set(uids)
        self.messages = [m for m in self.messages if m.uid not in gone]
        self.recent -= gone


@dataclass
class Mailbox:
    """One user's folders; INBOX always exists."""

    password: str
    folders: dict[str, _Folder] = field(default_factory=dict)
    sessions: int = 0  # logins that succeeded
    oauth: bool = False  # logs in only with an OAuth2 access token, never with a password


def folder_name(raw: str) -> str:
    """A folder name from the wire (modified UTF-7) as text; INBOX in any case is INBOX."""
    name = decode_folder(raw)
    return "INBOX" if name.upper() == "INBOX" else name


def _pattern(pattern: str) -> re.Pattern[str]:
    """A LIST pattern: ``*`` matches anything, ``%`` anything but the delimiter; INBOX in any case."""
    parts = [".*" if c == "*" else f"[^{re.escape(DELIMITER)}]*" if c == "%" else re.escape(c) for c in pattern]
    text = "".join(parts)
    if pattern.upper().startswith("INBOX"):
        text = "(?i:INBOX)" + "".join(parts[5:])
    return re.compile(text)


class DemoImapServer:
    """In-memory IMAP mailboxes on loopback; see the module docstring."""

    def __init__(self, mailboxes: Mapping[str, tuple[str, Mapping[str, Sequence[bytes]]]] | None = None, *,
                 host: str = "127.0.0.1", idle_timeout: float = 30 * 60.0,
                 token_check: Callable[[str], str | None] | None = None, tls: ssl.SSLContext | None = None,
                 implicit_tls: bool = False) -> None:
        self.host = host
        self.port = 0
        self.idle_timeout = idle_timeout  # RFC 3501: an autologout timer of at least 30 minutes
        self.token_check = token_check  # access token -> the user it was issued to, or None
        self.tls = tls  # a server context: STARTTLS is offered (or TLS from the start with implicit_tls)
        self.implicit_tls = implicit_tls
        self.mailboxes: dict[str, Mailbox] = {}
        self.logins: list[Login] = []
        self.commands: collections.Counter[str] = collections.Counter()  # "UID MOVE" -> how often
        self._uidvalidity = itertools.count(int(time.time()))
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        for user, (password, folders) in (mailboxes or {}).items():
            self.add_mailbox(user, password, folders)

    # --- the mailboxes ------------------------------------------------------------

    def add_mailbox(self, user: str, password: str, folders: Mapping[str, Sequence[bytes]] | None = None, *,
                    oauth: bool = False) -> None:
        """A mailbox with INBOX and *folders* (name -> messages); with *oauth* it logs in only with a token."""
        box = Mailbox("" if oauth else password, oauth=oauth)
        box.folders["INBOX"] = _Folder("INBOX", next(self._uidvalidity))
        self.mailboxes[user] = box
        for name, messages in (folders or {}).items():
            self.add_folder(user, name)
            for data in messages:
                self.add_message(user, data, name)

    def add_folder(self, user: str, name: str) -> None:
        """Create a folder (and the levels above it) unless it exists."""
        box = self.mailboxes[user]
        levels = folder_name(name).split(DELIMITER)
        for depth in range(1, len(levels) + 1):
            path = DELIMITER.join(levels[:depth])
            if path not in box.folders:
                box.folders[path] = _Folder(path, next(self._uidvalidity))

    def add_message(self, user: str, data: bytes, folder: str = "INBOX") -> int:
        """New mail in a folder (line endings become CRLF); returns its UID.  Idling sessions hear of it."""
        target = self._folder(user, folder)
        message = target.add(to_crlf(data))
        self.changed(target)
        return message.uid

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The messages in a folder, in UID order."""
        return [m.data for m in self._folder(user, folder).messages]

    def flags(self, user: str, folder: str = "INBOX") -> list[set[str]]:
        """The flags of each message in a folder, in UID order."""
        return [set(m.flags) for m in self._folder(user, folder).messages]

    def folders(self, user: str) -> list[str]:
        return sorted(self.mailboxes[user].folders, key=lambda name: (name != "INBOX", name))

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        return self._folder(user, folder).uidvalidity

    def renumber(self, user: str, folder: str = "INBOX") -> int:
        """Give a folder a new UIDVALIDITY and new UIDs (as after a server restore); returns the UIDVALIDITY.

        Sessions that have the folder selected are ended with ``* BYE``.
        """
        box = self.mailboxes[user]
        old = self._folder(user, folder)
        new = _Folder(old.name, next(self._uidvalidity), subscribed=old.subscribed)
        for message in old.messages:
            new.add(message.data, message.flags, message.internal_date)
        box.folders[old.name] = new
        old.alive = False
        self.changed(old)
        return new.uidvalidity

    def sessions(self, user: str) -> int:
        return self.mailboxes[user].sessions

    def idling(self, user: str | None = None) -> list[str]:
        """The folders sessions are idling on now (of one user, or of all)."""
        return [s.folder.name for s in self._sessions
                if s.idling and s.folder is not None and (user is None or s.user == user)]

    def _folder(self, user: str, name: str) -> _Folder:
        return self.mailboxes[user].folders[folder_name(name)]

    def changed(self, folder: _Folder, by: _Session | None = None) -> None:
        """Wake the other sessions that have *folder* selected: an idling one tells its client at once."""
        for session in self._sessions:
            if session.folder is folder and session is not by:
                session.wake.set()

    def new_folder(self, name: str) -> _Folder:
        return _Folder(name, next(self._uidvalidity))

    # --- serving ------------------------------------------------------------------

    async def start(self) -> None:
        tls = self.tls if self.implicit_tls else None
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=MAX_LINE, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(self, reader, writer, encrypted=self.tls is not None and self.implicit_tls)
        self._sessions.add(session)
        try:
            await session.run()
        except (OSError, TimeoutError, _Gone):
            pass  # the client went away, idled out, or its folder went away
        except asyncio.CancelledError:
            pass  # stop(): the session ends here (asyncio would log a cancelled connection task as an error)
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# --- one connection -----------------------------------------------------------------


class _Bad(Exception):
    """The command is not understood: tagged BAD with this text."""


class _No(Exception):
    """The command cannot be done: tagged NO, with a response code."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class _Gone(Exception):
    """The connection is over (the client left, or the session was ended)."""


@dataclass
class _Command:
    segments: list[bytes]  # the command's text, split where literals go
    literals: list[bytes]  # literals[i] comes after segments[i]


class _Args:
    """A cursor over a command's arguments: atoms, quoted strings, literals and lists."""

    def __init__(self, command: _Command) -> None:
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
            raise _Bad("too many arguments")

    def next_is_list(self) -> bool:
        return self.more() and self.pos < len(self._text) and self._text[self.pos] == 0x28

    def token(self, depth: int = 0) -> Token:
        self._skip_spaces()
        text = self._text
        if self.pos >= len(text):
            if self.index >= len(self.literals):
                raise _Bad("an argument is missing")
            literal = self.literals[self.index]
            self.index += 1
            self.pos = 0
            return literal
        c = text[self.pos]
        if c == 0x28:  # (
            if depth > 20:
                raise _Bad("lists nested too deeply")
            self.pos += 1
            items: list[Token] = []
            while True:
                self._skip_spaces()
                if self.pos < len(self._text) and self._text[self.pos] == 0x29:  # )
                    self.pos += 1
                    return items
                if not self.more():
                    raise _Bad("a list without its closing parenthesis")
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
                    raise _Bad("a bad escape in a quoted string")
                out.append(text[i + 1])
                i += 2
                continue
            if ch == 0x22:
                self.pos = i + 1
                return out.decode("utf-8", errors="replace")
            out.append(ch)
            i += 1
        raise _Bad("a quoted string without its closing quote")

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
                raise _Bad("a control character in an argument")
            i += 1
        if depth:
            raise _Bad("a [ without its ]")
        if i == start:
            raise _Bad(f"unexpected {chr(text[i])!r}")
        self.pos = i
        return text[start:i].decode("utf-8", errors="replace")

    def string(self) -> str:
        """An astring: an atom, a quoted string or a literal, as text."""
        value = self.token()
        if isinstance(value, list):
            raise _Bad("a string expected, not a list")
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value

    def atom(self) -> str:
        value = self.token()
        if not isinstance(value, str):
            raise _Bad("an atom expected")
        return value

    def literal(self) -> bytes:
        value = self.token()
        if not isinstance(value, bytes):
            raise _Bad("a literal expected")
        return value

    def rest(self) -> list[Token]:
        out: list[Token] = []
        while self.more():
            out.append(self.token())
        return out


Handler = Callable[["_Args", bool], Awaitable[str]]
"""A command: reads its arguments, answers with untagged data, returns the tagged OK's text."""

_ANY_STATE = {"CAPABILITY", "NOOP", "LOGOUT"}
_NOT_AUTHENTICATED = {"STARTTLS", "AUTHENTICATE", "LOGIN"}
_AUTHENTICATED = {"SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS",
                  "APPEND", "IDLE"}
_SELECTED = {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"}
_UID_COMMANDS = {"FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE"}


@dataclass(frozen=True)
class _FetchItem:
    name: str  # what the response calls it: UID, FLAGS, BODY[HEADER]<0>, RFC822...
    part: str = ""  # for content: "" (whole), "HEADER" or "TEXT"
    sets_seen: bool = False
    partial: tuple[int, int] | None = None


_SIMPLE_ITEMS = {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"}
_RFC822_ITEMS = {"RFC822": _FetchItem("RFC822", "", True), "RFC822.HEADER": _FetchItem("RFC822.HEADER", "HEADER"),
                 "RFC822.TEXT": _FetchItem("RFC822.TEXT", "TEXT", True)}


class _Session:
    """One connection: not authenticated, then authenticated, then a folder selected."""

    def __init__(self, server: DemoImapServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 encrypted: bool) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.encrypted = encrypted
        self.user = ""
        self.box: Mailbox | None = None  # after a login
        self.folder: _Folder | None = None  # the selected folder
        self.readonly = False
        self.view: list[int] = []  # the selected folder's UIDs by sequence number - 1, as this client knows them
        self.recent: set[int] = set()  # UIDs that are \Recent in this session
        self.wake = asyncio.Event()  # set when another session (or the demo) changed the selected folder
        self.idling = False
        self.done = False
        self.handlers: dict[str, Handler] = {
            "CAPABILITY": self.capability, "NOOP": self.noop, "CHECK": self.noop, "LOGOUT": self.logout,
            "STARTTLS": self.starttls, "LOGIN": self.login, "AUTHENTICATE": self.authenticate,
            "SELECT": self.select, "EXAMINE": self.examine, "CREATE": self.create, "DELETE": self.delete,
            "SUBSCRIBE": self.subscribe, "UNSUBSCRIBE": self.unsubscribe, "LIST": self.list_folders,
            "LSUB": self.lsub, "STATUS": self.status, "APPEND": self.append, "IDLE": self.idle,
            "CLOSE": self.close, "UNSELECT": self.unselect, "EXPUNGE": self.expunge, "SEARCH": self.search,
            "FETCH": self.fetch, "STORE": self.store, "COPY": self.copy, "MOVE": self.move,
        }

    def send(self, line: str) -> None:
        self.writer.write(line.encode("utf-8") + b"\r\n")

    def capabilities(self) -> str:
        if self.server.tls is not None and not self.encrypted:
            return " ".join((*CAPABILITIES, "STARTTLS", "LOGINDISABLED"))
        return " ".join((*CAPABILITIES, *(f"AUTH={m}" for m in AUTH_MECHANISMS)))

    # --- reading commands -------------------------------------------------------------

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] pop3gui demo IMAP server ready")
        while not self.done:
            await self.writer.drain()
            command = await self.read_command()
            if command is None:
                return
            await self.execute(command)

    async def read_line(self) -> bytes | None:
        """One line (with its CRLF); None after saying BYE when it is too long or the client idled out."""
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\n"), self.server.idle_timeout)
        except asyncio.IncompleteReadError:
            raise _Gone() from None
        except asyncio.LimitOverrunError:
            self.send("* BYE command line too long")
        except TimeoutError:
            self.send("* BYE autologout: idle for too long")
        return None

    async def read_command(self) -> _Command | None:
        """A command line with its literals; a synchronising literal is asked for with ``+``."""
        segments: list[bytes] = []
        literals: list[bytes] = []
        total = 0
        while True:
            line = await self.read_line()
            if line is None:
                return None
            total += len(line)
            match = _LITERAL.search(line)
            if match is None:
                segments.append(line.rstrip(b"\r\n"))
                return _Command(segments, literals)
            segments.append(line[:match.start()])
            size, synchronising = int(match.group(1)), not match.group(2)
            total += size
            if total > MAX_COMMAND:
                if not synchronising:  # the data is on its way already: the conversation cannot go on
                    self.send("* BYE command too long")
                    return None
                tag = segments[0].split(b" ", 1)[0].decode("ascii", errors="replace")
                self.send(f"{tag} BAD the command is too long" if _TAG.fullmatch(tag) else "* BAD too long")
                segments, literals, total = [], [], 0
                continue
            if synchronising:
                self.send("+ go ahead")
                await self.writer.drain()
            try:
                literals.append(await asyncio.wait_for(self.reader.readexactly(size), self.server.idle_timeout))
            except asyncio.IncompleteReadError:
                raise _Gone() from None

    async def execute(self, command: _Command) -> None:
        args = _Args(command)
        try:
            tag = args.atom() if args.more() else ""
        except _Bad:
            tag = ""
        if not _TAG.fullmatch(tag):
            self.send("* BAD a command starts with a tag")
            return
        uid = False
        name = ""
        try:
            name = args.atom().upper()
            if name == "UID":
                name, uid = args.atom().upper(), True
                if name not in _UID_COMMANDS:
                    raise _Bad(f"UID {name} is not a command")
            self.allowed(name)
            self.server.commands[f"UID {name}" if uid else name] += 1
            try:
                text = await self.handlers[name](args, uid)
            except _No as no:
                self.sync(expunges=uid or name not in ("FETCH", "STORE", "SEARCH"))
                self.send(f"{tag} NO " + (f"[{no.code}] " if no.code else "") + no.text)
                return
        except _Bad as bad:
            self.send(f"{tag} BAD {bad}")
            return
        self.sync(expunges=uid or name not in ("FETCH", "STORE", "SEARCH"))
        self.send(f"{tag} OK {text}")
        if name == "STARTTLS":
            await self.start_tls()

    def allowed(self, name: str) -> None:
        """Refuse a command the session's state does not allow."""
        if name in _ANY_STATE:
            return
        if name in _NOT_AUTHENTICATED:
            if self.box is not None:
                raise _Bad(f"{name}: already logged in")
            return
        if name in _AUTHENTICATED | _SELECTED:
            if self.box is None:
                raise _Bad(f"{name}: log in first")
            if name in _SELECTED and self.folder is None:
                raise _Bad(f"{name}: select a folder first")
            return
        raise _Bad(f"unknown command {name[:40]}")

    # --- keeping the client's view of the folder up to date ----------------------------------

    def sync(self, *, expunges: bool) -> None:
        """Tell the client what changed in its folder since it last heard: EXPUNGEs, then EXISTS and RECENT.

        *expunges* is False while answering FETCH, STORE or SEARCH, which
        must not renumber messages (RFC 3501, 7.4.1): then nothing is said yet.
        """
        folder = self.folder
        if folder is None:
            return
        if not folder.alive:
            self.send(f"* BYE folder {folder.name} was deleted or renumbered; please reconnect")
            self.done = True
            raise _Gone()
        present = {m.uid for m in folder.messages}
        gone = [uid for uid in self.view if uid not in present]
        if gone and not expunges:
            return
        for uid in gone:
            seq = self.view.index(uid) + 1
            del self.view[seq - 1]
            self.send(f"* {seq} EXPUNGE")
        known = set(self.view)
        new = [m.uid for m in folder.messages if m.uid not in known]
        if new:
            self.view += new
            self.recent |= self.take_recent(new)
            self.send(f"* {len(self.view)} EXISTS")
            self.send(f"* {len(self.recent & set(self.view))} RECENT")

    def take_recent(self, uids: Iterable[int]) -> set[int]:
        """The UIDs that are \\Recent for this session; a read-write session takes them from later ones."""
        assert self.folder is not None
        fresh = self.folder.recent.intersection(uids)
        if not self.readonly:
            self.folder.recent -= fresh
        return fresh

    def flags_of(self, message: _Message) -> str:
        flags = sorted(message.flags) + (["\\Recent"] if message.uid in self.recent else [])
        return "(" + " ".join(flags) + ")"

    def selected(self, sequence: str, uid: bool) -> list[tuple[int, _Message]]:
        """The (sequence number, message) pairs a sequence set names; messages gone meanwhile are left out."""
        assert self.folder is not None
        largest = (self.view[-1] if self.view else 0) if uid else len(self.view)
        ranges = parse_sequence_set(sequence, largest)
        if not uid and any(low < 1 or high > len(self.view) for low, high in ranges):
            raise _Bad("no such message")
        by_uid = {m.uid: m for m in self.folder.messages}
        out: list[tuple[int, _Message]] = []
        for seq, known in enumerate(self.view, 1):
            key = known if uid else seq
            if known in by_uid and any(low <= key <= high for low, high in ranges):
                out.append((seq, by_uid[known]))
        return out

    # --- any state ---------------------------------------------------------------------

    async def capability(self, args: _Args, uid: bool) -> str:
        args.end()
        self.send(f"* CAPABILITY {self.capabilities()}")
        return "CAPABILITY completed"

    async def noop(self, args: _Args, uid: bool) -> str:
        args.end()
        return "done"

    async def logout(self, args: _Args, uid: bool) -> str:
        args.end()
        self.send("* BYE pop3gui demo IMAP server logging out")
        self.done = True
        self.folder = None
        return "LOGOUT completed"

    # --- logging in ------------------------------------------------------------------------

    async def starttls(self, args: _Args, uid: bool) -> str:
        args.end()
        if self.server.tls is None or self.encrypted:
            raise _Bad("STARTTLS is not offered on this connection")
        return "begin TLS now"

    async def start_tls(self) -> None:
        await self.writer.drain()
        if getattr(self.reader, "_buffer", b""):  # sent before TLS, it would pass for protected: drop it
            self.done = True
            return
        assert self.server.tls is not None
        await self.writer.start_tls(self.server.tls)
        self.encrypted = True

    def privacy(self) -> None:
        if self.server.tls is not None and not self.encrypted:
            raise _No("PRIVACYREQUIRED", "start TLS first (STARTTLS)")

    async def login(self, args: _Args, uid: bool) -> str:
        user, password = args.string(), args.string()
        args.end()
        self.privacy()
        box = self.server.mailboxes.get(user)
        if box is not None and box.oauth:
            raise _No("AUTHENTICATIONFAILED", "this mailbox signs in with OAuth2 only: AUTHENTICATE XOAUTH2")
        if box is None or box.password != password:
            raise _No("AUTHENTICATIONFAILED", "invalid user name or password")
        return self.log_in(user, box, "LOGIN")

    def log_in(self, user: str, box: Mailbox, method: str) -> str:
        self.user, self.box = user, box
        box.sessions += 1
        self.server.logins.append(Login(user, method))
        return f"[CAPABILITY {self.capabilities()}] logged in"

    async def authenticate(self, args: _Args, uid: bool) -> str:
        mechanism = args.atom().upper()
        initial = args.atom() if args.more() else None
        args.end()
        if mechanism not in AUTH_MECHANISMS:
            raise _No("", f"unsupported mechanism; this server offers {', '.join(AUTH_MECHANISMS)}")
        self.privacy()
        if initial is None:
            self.send("+ ")
            response = await self.sasl_line()
        else:
            response = "" if initial == "=" else initial
        if response == "*":
            raise _Bad("AUTHENTICATE cancelled")
        if mechanism == "PLAIN":
            return self.plain(response)
        return await self.bearer(mechanism, response)

    async def sasl_line(self) -> str:
        await self.writer.drain()
        line = await self.read_line()
        if line is None:
            self.done = True
            raise _Gone()
        return line.decode("ascii", errors="replace").rstrip("\r\n")

    def plain(self, response: str) -> str:
        try:
            parts = base64.b64decode(response, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            raise _Bad("the PLAIN response is not base64") from None
        if len(parts) != 3:
            raise _Bad("a PLAIN response is authzid NUL user NUL password")
        authzid, user, password = (p.decode("utf-8", errors="replace") for p in parts)
        box = self.server.mailboxes.get(user)
        if authzid not in ("", user) or box is None or box.oauth or box.password != password:
            raise _No("AUTHENTICATIONFAILED", "Authentication failed.")
        return self.log_in(user, box, "AUTHENTICATE PLAIN")

    async def bearer(self, mechanism: str, response: str) -> str:
        bearer = parse_bearer(mechanism, response)
        if bearer is None:
            raise _Bad(f"malformed {mechanism} response")
        check = self.server.token_check
        owner = check(bearer.token) if check is not None else None
        user = bearer.user or owner or ""
        box = self.server.mailboxes.get(user)
        if box is None or not box.oauth or owner is None or owner.lower() != user.lower():
            self.send("+ " + error_challenge(mechanism, scope="imap"))
            await self.sasl_line()  # whatever the client answers, the exchange ends in NO
            raise _No("AUTHENTICATIONFAILED", "Authentication failed.")
        return self.log_in(user, box, mechanism)

    # --- folders -----------------------------------------------------------------------------

    def find(self, raw: str) -> _Folder | None:
        assert self.box is not None
        return self.box.folders.get(folder_name(raw))

    def deselect(self) -> None:
        self.folder, self.view, self.recent, self.readonly = None, [], set(), False

    async def select(self, args: _Args, uid: bool) -> str:
        return await self._select(args, readonly=False)

    async def examine(self, args: _Args, uid: bool) -> str:
        return await self._select(args, readonly=True)

    async def _select(self, args: _Args, *, readonly: bool) -> str:
        raw = args.string()
        args.end()
        self.deselect()  # a failed SELECT leaves no folder selected
        folder = self.find(raw)
        if folder is None:
            raise _No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
        self.folder, self.readonly = folder, readonly
        self.view = [m.uid for m in folder.messages]
        self.recent = self.take_recent(self.view)
        self.send(f"* FLAGS ({' '.join(SYSTEM_FLAGS)})")
        self.send(f"* {len(self.view)} EXISTS")
        self.send(f"* {len(self.recent)} RECENT")
        unseen = next((seq for seq, m in enumerate(folder.messages, 1) if "\\Seen" not in m.flags), 0)
        if unseen:
            self.send(f"* OK [UNSEEN {unseen}] first unseen message")
        permanent = "" if readonly else " ".join((*SYSTEM_FLAGS, "\\*"))
        self.send(f"* OK [PERMANENTFLAGS ({permanent})] flags that stay")
        self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
        self.send(f"* OK [UIDNEXT {folder.uidnext}] predicted next UID")
        return ("[READ-ONLY] EXAMINE" if readonly else "[READ-WRITE] SELECT") + " completed"

    async def create(self, args: _Args, uid: bool) -> str:
        name = folder_name(args.string()).rstrip(DELIMITER)
        args.end()
        assert self.box is not None
        if name in self.box.folders:
            raise _No("ALREADYEXISTS", f"{name!r} exists already")
        levels = name.split(DELIMITER)
        if not name or "" in levels or any(c in name for c in "*%") or any(not c.isprintable() for c in name):
            raise _No("CANNOT", f"{name!r} is not a valid folder name")
        for depth in range(1, len(levels) + 1):
            path = DELIMITER.join(levels[:depth])
            if path not in self.box.folders:
                self.box.folders[path] = self.server.new_folder(path)
        return "CREATE completed"

    async def delete(self, args: _Args, uid: bool) -> str:
        name = folder_name(args.string())
        args.end()
        assert self.box is not None
        folder = self.box.folders.get(name)
        if folder is None:
            raise _No("NONEXISTENT", f"no folder {name!r}")
        if name == "INBOX" or any(other.startswith(name + DELIMITER) for other in self.box.folders):
            raise _No("CANNOT", "INBOX and folders with sub-folders cannot be deleted")
        if folder is self.folder:
            self.deselect()
        del self.box.folders[name]
        folder.alive = False
        self.server.changed(folder)
        return "DELETE completed"

    async def subscribe(self, args: _Args, uid: bool) -> str:
        return self._subscribe(args, True)

    async def unsubscribe(self, args: _Args, uid: bool) -> str:
        return self._subscribe(args, False)

    def _subscribe(self, args: _Args, on: bool) -> str:
        raw = args.string()
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise _No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
        folder.subscribed = on
        return "done"

    async def list_folders(self, args: _Args, uid: bool) -> str:
        return self._list(args, "LIST")

    async def lsub(self, args: _Args, uid: bool) -> str:
        return self._list(args, "LSUB")

    def _list(self, args: _Args, verb: str) -> str:
        reference, pattern = decode_folder(args.string()), decode_folder(args.string())
        args.end()
        assert self.box is not None
        if not pattern:  # the hierarchy delimiter and root
            self.send(f'* {verb} (\\Noselect) "{DELIMITER}" ""')
            return f"{verb} completed"
        matcher = _pattern(reference + pattern)
        names = sorted(self.box.folders, key=lambda n: (n != "INBOX", n))
        for name in names:
            folder = self.box.folders[name]
            if not matcher.fullmatch(name) or (verb == "LSUB" and not folder.subscribed):
                continue
            children = any(other.startswith(name + DELIMITER) for other in names)
            flags = "\\HasChildren" if children else "\\HasNoChildren"
            self.send(f'* {verb} ({flags}) "{DELIMITER}" {quote(encode_folder(name))}')
        return f"{verb} completed"

    async def status(self, args: _Args, uid: bool) -> str:
        raw = args.string()
        items = args.token()
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise _No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
        if not isinstance(items, list) or not items:
            raise _Bad("STATUS wants a list of items")
        values = {"MESSAGES": len(folder.messages), "RECENT": len(folder.recent), "UIDNEXT": folder.uidnext,
                  "UIDVALIDITY": folder.uidvalidity,
                  "UNSEEN": sum(1 for m in folder.messages if "\\Seen" not in m.flags)}
        out = []
        for item in items:
            if not isinstance(item, str) or item.upper() not in values:
                raise _Bad(f"unknown STATUS item {item!r}")
            out.append(f"{item.upper()} {values[item.upper()]}")
        self.send(f"* STATUS {quote(encode_folder(folder.name))} ({' '.join(out)})")
        return "STATUS completed"

    async def append(self, args: _Args, uid: bool) -> str:
        raw = args.string()
        flags: list[str] = []
        if args.next_is_list():
            flags = parse_flags(args.token())
        when: datetime | None = None
        token = args.token()
        if isinstance(token, str):
            when = parse_date(token)
            if when is None:
                raise _Bad("APPEND's date-time is not like \" 7-Mar-2024 09:15:00 +0100\"")
            token = args.token()
        if not isinstance(token, bytes):
            raise _Bad("APPEND wants the message as a literal")
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise _No("TRYCREATE", f"no folder {folder_name(raw)!r}")
        message = folder.add(token, flags, when)
        self.server.changed(folder, by=self)
        return f"[APPENDUID {folder.uidvalidity} {message.uid}] APPEND completed"

    async def idle(self, args: _Args, uid: bool) -> str:
        """IDLE: say what changes in the selected folder as it happens, until the client sends DONE."""
        args.end()
        self.send("+ idling")
        self.idling = True
        reading = asyncio.ensure_future(self.reader.readuntil(b"\n"))
        woken: asyncio.Future[Any] | None = None
        try:
            while True:
                self.wake.clear()
                self.sync(expunges=True)
                await self.writer.drain()
                woken = asyncio.ensure_future(self.wake.wait())
                done, _ = await asyncio.wait({reading, woken}, timeout=self.server.idle_timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if reading in done:
                    break
                if not done:
                    self.send("* BYE autologout: idle for too long")
                    self.done = True
                    raise _Gone()
        finally:
            self.idling = False
            for future in (reading, woken):
                if future is not None and not future.done():
                    future.cancel()
                    with contextlib.suppress(BaseException):
                        await future
        try:
            line = reading.result()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.done = True
            raise _Gone() from None
        if line.rstrip(b"\r\n").upper() != b"DONE":
            raise _Bad("IDLE ends with DONE")
        return "IDLE terminated"

    # --- the selected folder ----------------------------------------------------------------

    async def close(self, args: _Args, uid: bool) -> str:
        args.end()
        folder = self.folder
        assert folder is not None
        if not self.readonly:  # removes what is marked \Deleted, silently
            folder.remove(m.uid for m in folder.messages if "\\Deleted" in m.flags)
            self.server.changed(folder, by=self)
        self.deselect()
        return "CLOSE completed"

    async def unselect(self, args: _Args, uid: bool) -> str:
        args.end()
        self.deselect()
        return "UNSELECT completed"

    async def expunge(self, args: _Args, uid: bool) -> str:
        assert self.folder is not None
        wanted = {m.uid for _, m in self.selected(args.atom(), True)} if uid else None
        args.end()
        if self.readonly:
            raise _No("READ-ONLY", "the folder is open read-only (EXAMINE)")
        self.folder.remove(m.uid for m in self.folder.messages
                           if "\\Deleted" in m.flags and (wanted is None or m.uid in wanted))
        self.server.changed(self.folder, by=self)
        return f"{'UID ' if uid else ''}EXPUNGE completed"  # the EXPUNGE responses come with sync()

    async def fetch(self, args: _Args, uid: bool) -> str:
        targets = self.selected(args.atom(), uid)
        items = parse_fetch_items(args.token())
        args.end()
        if uid and not any(item.name == "UID" for item in items):
            items.insert(0, _FetchItem("UID"))
        for seq, message in targets:
            self.writer.write(self.fetch_response(seq, message, items))
        return f"{'UID ' if uid else ''}FETCH completed"

    def fetch_response(self, seq: int, message: _Message, items: list[_FetchItem]) -> bytes:
        flags_before = set(message.flags)
        if not self.readonly and any(item.sets_seen for item in items):
            message.flags.add("\\Seen")
        parts: list[bytes] = []
        for item in items:
            if item.name == "UID":
                parts.append(f"UID {message.uid}".encode())
            elif item.name == "FLAGS":
                parts.append(f"FLAGS {self.flags_of(message)}".encode())
            elif item.name == "INTERNALDATE":
                parts.append(f'INTERNALDATE "{imap_date(message.internal_date)}"'.encode())
            elif item.name == "RFC822.SIZE":
                parts.append(f"RFC822.SIZE {len(message.data)}".encode())
            else:
                content = (message.header() if item.part == "HEADER" else
                           message.text() if item.part == "TEXT" else message.data)
                if item.partial is not None:
                    start, count = item.partial
                    content = content[start:start + count]
                parts.append(f"{item.name} {{{len(content)}}}\r\n".encode() + content)
        if message.flags != flags_before and not any(item.name == "FLAGS" for item in items):
            parts.append(f"FLAGS {self.flags_of(message)}".encode())
        return f"* {seq} FETCH (".encode() + b" ".join(parts) + b")\r\n"

    async def store(self, args: _Args, uid: bool) -> str:
        targets = self.selected(args.atom(), uid)
        action = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", args.atom().upper())
        if action is None:
            raise _Bad("STORE wants FLAGS, +FLAGS or -FLAGS (.SILENT)")
        tokens = args.rest()
        flags = parse_flags(tokens[0] if len(tokens) == 1 and isinstance(tokens[0], list) else tokens)
        if self.readonly:
            raise _No("READ-ONLY", "the folder is open read-only (EXAMINE)")
        sign, silent = action.group(1), bool(action.group(2))
        for seq, message in targets:
            if sign == "+":
                message.flags |= set(flags)
            elif sign == "-":
                message.flags -= set(flags)
            else:
                message.flags = set(flags)
            if not silent:
                uid_part = f"UID {message.uid} " if uid else ""
                self.send(f"* {seq} FETCH ({uid_part}FLAGS {self.flags_of(message)})")
        return f"{'UID ' if uid else ''}STORE completed"

    async def search(self, args: _Args, uid: bool) -> str:
        tokens = args.rest()
        if len(tokens) >= 2 and isinstance(tokens[0], str) and tokens[0].upper() == "CHARSET":
            charset = tokens[1]
            if not isinstance(charset, str) or charset.upper() not in ("US-ASCII", "UTF-8"):
                raise _No("BADCHARSET (US-ASCII UTF-8)", "unsupported charset")
            tokens = tokens[2:]
        if not tokens:
            raise _Bad("SEARCH wants a search key")
        matches = _SearchKeys(self, tokens).all()
        assert self.folder is not None
        by_uid = {m.uid: m for m in self.folder.messages}
        found = [uid_ if uid else seq for seq, uid_ in enumerate(self.view, 1)
                 if uid_ in by_uid and matches(seq, by_uid[uid_])]
        self.send("* SEARCH" + "".join(f" {n}" for n in found))
        return f"{'UID ' if uid else ''}SEARCH completed"

    async def copy(self, args: _Args, uid: bool) -> str:
        return self._transfer(args, uid, move=False)

    async def move(self, args: _Args, uid: bool) -> str:
        return self._transfer(args, uid, move=True)

    def _transfer(self, args: _Args, uid: bool, *, move: bool) -> str:
        """COPY or MOVE (RFC 6851): copies in the target, COPYUID (RFC 4315); MOVE then expunges the originals."""
        targets = self.selected(args.atom(), uid)
        raw = args.string()
        args.end()
        source = self.folder
        assert source is not None
        verb = ("UID " if uid else "") + ("MOVE" if move else "COPY")
        if move and self.readonly:
            raise _No("READ-ONLY", "the folder is open read-only (EXAMINE)")
        target = self.find(raw)
        if target is None:
            raise _No("TRYCREATE", f"no folder {folder_name(raw)!r}")
        if not targets:
            return f"{verb} completed (nothing to {verb.split()[-1].lower()})"
        copies = [target.add(m.data, m.flags, m.internal_date) for _, m in targets]
        code = (f"COPYUID {target.uidvalidity} {uid_set(m.uid for _, m in targets)} "
                f"{uid_set(c.uid for c in copies)}")
        self.server.changed(target, by=self)
        if not move:
            return f"[{code}] {verb} completed"
        self.send(f"* OK [{code}] moved")
        source.remove(m.uid for _, m in targets)
        self.server.changed(source, by=self)
        return f"{verb} completed"  # the EXPUNGE responses come with sync()


# --- parsing arguments ---------------------------------------------------------------------


def parse_sequence_set(text: str, largest: int) -> list[tuple[int, int]]:
    """A sequence set (``1:3,7,9:*``) as inclusive ranges; ``*`` is *largest*."""

    def number(part: str) -> int:
        if part == "*":
            return largest
        if not part.isdigit() or part.startswith("0") or len(part) > 10 or int(part) > 0xFFFFFFFF:
            raise _Bad(f"invalid sequence set {text[:40]!r}")
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
            raise _Bad("a flag expected")
        if item.startswith("\\"):
            canonical = _CANONICAL_FLAGS.get(item.upper())
            if canonical is None:
                raise _Bad(f"unknown system flag {item[:40]}")
            flags.append(canonical)
        elif any(c in item for c in "[]%*\\") or not item.isprintable():
            raise _Bad(f"invalid keyword {item[:40]!r}")
        else:
            flags.append(item)
    return flags


def parse_fetch_items(value: Token) -> list[_FetchItem]:
    """FETCH's data items: one item, a list, or the macro FAST."""
    raw = value if isinstance(value, list) else [value]
    out: list[_FetchItem] = []
    for item in raw:
        if not isinstance(item, str):
            raise _Bad("a FETCH item expected")
        name = item.upper()
        if name == "FAST":
            out += [_FetchItem("FLAGS"), _FetchItem("INTERNALDATE"), _FetchItem("RFC822.SIZE")]
        elif name in _SIMPLE_ITEMS:
            out.append(_FetchItem(name))
        elif name in _RFC822_ITEMS:
            out.append(_RFC822_ITEMS[name])
        elif (body := _BODY_ITEM.fullmatch(name)) is not None and body.group(2) in ("", "HEADER", "TEXT"):
            peek, part = body.group(1) == "BODY.PEEK", body.group(2)
            partial = (int(body.group(3)), int(body.group(4))) if body.group(3) is not None else None
            label = f"BODY[{part}]" + (f"<{partial[0]}>" if partial is not None else "")
            out.append(_FetchItem(label, part, not peek, partial))
        else:
            raise _Bad(f"FETCH item {item[:40]} is not served by the demo server")
    if not out:
        raise _Bad("FETCH wants at least one item")
    return out


Matcher = Callable[[int, _Message], bool]

_FLAG_KEYS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft", "FLAGGED": "\\Flagged",
              "SEEN": "\\Seen"}


class _SearchKeys:
    """SEARCH keys as a test of (sequence number, message): flags, keywords, sets, sizes, NOT, OR, lists."""

    def __init__(self, session: _Session, tokens: list[Token]) -> None:
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
            raise _Bad("a search key is incomplete")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def text(self) -> str:
        token = self.take()
        if isinstance(token, list):
            raise _Bad("a search argument expected, not a list")
        return token.decode("utf-8", errors="replace") if isinstance(token, bytes) else token

    def key(self) -> Matcher:
        token = self.take()
        if isinstance(token, list):
            return _SearchKeys(self.session, token).all()
        if isinstance(token, bytes):
            raise _Bad("a search key expected")
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
                raise _Bad(f"{name} wants a number")
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
        raise _Bad(f"search key {token[:40]} is not served by the demo server")


__all__ = ["CAPABILITIES", "DemoImapServer", "Mailbox", "folder_name", "imap_date", "parse_date",
           "parse_sequence_set", "uid_set"]
