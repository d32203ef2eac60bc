"""The demo IMAP server's connection: reading commands, the session states, logging in.

One :class:`Connection` per client, below the commands on folders and
messages (:mod:`pop3gui.demo.imap_session`): it reads a command with its
literals, refuses what the state does not allow, answers the tagged OK, NO
or BAD, logs in (LOGIN, AUTHENTICATE PLAIN, XOAUTH2, OAUTHBEARER, after
STARTTLS where TLS is offered), and tells the client of changes to its
selected folder only where RFC 3501 (7.4.1) allows.  Kept apart so that the
conversation's rules read in one place, and the commands without them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from pop3gui.demo.imap_store import Folder, Mailbox, Message
from pop3gui.demo.imap_wire import Args, Bad, Command, Gone, No, parse_sequence_set
from pop3gui.demo.pop3_server import Login, error_challenge, parse_bearer

CAPABILITIES = ("IMAP4rev1", "LITERAL+", "SASL-IR", "UIDPLUS", "MOVE", "IDLE", "UNSELECT", "CHILDREN")
AUTH_MECHANISMS = ("PLAIN", "XOAUTH2", "OAUTHBEARER")
MAX_LINE = 16 * 1024  # a command line; a SASL response carrying a token fits
MAX_COMMAND = 64 * 1024 * 1024  # a whole command with its literals (an APPENDed message)

_LITERAL = re.compile(rb"\{(\d{1,10})(\+?)\}\r?\n\Z")
_TAG = re.compile(r'[^\x00-\x20\x7f(){%*"\\+]+')

Handler = Callable[[Args, bool], Awaitable[str]]
"""A command: reads its arguments, answers with untagged data, returns the tagged OK's text."""

_ANY_STATE = {"CAPABILITY", "NOOP", "LOGOUT"}
_NOT_AUTHENTICATED = {"STARTTLS", "AUTHENTICATE", "LOGIN"}
_AUTHENTICATED = {"SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS",
                  "APPEND", "IDLE"}
_SELECTED = {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"}
_UID_COMMANDS = {"FETCH", "STORE", "SEARCH", "COPY", "MOVE", "EXPUNGE"}


class Host(Protocol):
    """The server as a session sees it (:class:`~pop3gui.demo.imap_server.DemoImapServer`)."""

    tls: ssl.SSLContext | None
    idle_timeout: float
    token_check: Callable[[str], str | None] | None
    mailboxes: dict[str, Mailbox]
    logins: list[Login]
    commands: collections.Counter[str]

    def changed(self, folder: Folder, by: Connection | None = None) -> None: ...

    def new_folder(self, name: str) -> Folder: ...


class Connection:
    """One connection: not authenticated, then authenticated, then a folder selected.

    It reads commands, checks that the state allows them, logs in, and keeps
    the client's view of its folder in step; :class:`~pop3gui.demo.imap_session.Session`
    adds the commands on folders and messages.
    """

    def __init__(self, server: Host, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 encrypted: bool) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.encrypted = encrypted
        self.user = ""
        self.box: Mailbox | None = None  # after a login
        self.folder: Folder | None = None  # the selected folder
        self.readonly = False
        self.view: list[int] = []  # the selected folder's UIDs by sequence number - 1, as this client knows them
        self.recent: set[int] = set()  # UIDs that are \Recent in this session
        self.wake = asyncio.Event()  # set when another session (or the demo) changed the selected folder
        self.idling = False
        self.done = False
        self.handlers: dict[str, Handler] = {  # the mailbox commands are added by Session
            "CAPABILITY": self.capability, "NOOP": self.noop, "CHECK": self.noop, "LOGOUT": self.logout,
            "STARTTLS": self.starttls, "LOGIN": self.login, "AUTHENTICATE": self.authenticate,
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
            raise Gone() from None
        except asyncio.LimitOverrunError:
            self.send("* BYE command line too long")
        except TimeoutError:
            self.send("* BYE autologout: idle for too long")
        return None

    async def read_command(self) -> Command | None:
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
                return Command(segments, literals)
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
                raise Gone() from None

    async def execute(self, command: Command) -> None:
        args = Args(command)
        try:
            tag = args.atom() if args.more() else ""
        except Bad:
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
                    raise Bad(f"UID {name} is not a command")
            self.allowed(name)
            self.server.commands[f"UID {name}" if uid else name] += 1
            try:
                text = await self.handlers[name](args, uid)
            except No as no:
                self.sync(expunges=uid or name not in ("FETCH", "STORE", "SEARCH"))
                self.send(f"{tag} NO " + (f"[{no.code}] " if no.code else "") + no.text)
                return
        except Bad as bad:
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
                raise Bad(f"{name}: already logged in")
            return
        if name in _AUTHENTICATED | _SELECTED:
            if self.box is None:
                raise Bad(f"{name}: log in first")
            if name in _SELECTED and self.folder is None:
                raise Bad(f"{name}: select a folder first")
            return
        raise Bad(f"unknown command {name[:40]}")

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
            raise Gone()
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

    def flags_of(self, message: Message) -> str:
        flags = sorted(message.flags) + (["\\Recent"] if message.uid in self.recent else [])
        return "(" + " ".join(flags) + ")"

    def selected(self, sequence: str, uid: bool) -> list[tuple[int, Message]]:
        """The (sequence number, message) pairs a sequence set names; messages gone meanwhile are left out."""
        assert self.folder is not None
        largest = (self.view[-1] if self.view else 0) if uid else len(self.view)
        ranges = parse_sequence_set(sequence, largest)
        if not uid and any(low < 1 or high > len(self.view) for low, high in ranges):
            raise Bad("no such message")
        by_uid = {m.uid: m for m in self.folder.messages}
        out: list[tuple[int, Message]] = []
        for seq, known in enumerate(self.view, 1):
            key = known if uid else seq
            if known in by_uid and any(low <= key <= high for low, high in ranges):
                out.append((seq, by_uid[known]))
        return out

    # --- any state ---------------------------------------------------------------------

    async def capability(self, args: Args, uid: bool) -> str:
        args.end()
        self.send(f"* CAPABILITY {self.capabilities()}")
        return "CAPABILITY completed"

    async def noop(self, args: Args, uid: bool) -> str:
        args.end()
        return "done"

    async def logout(self, args: Args, uid: bool) -> str:
        args.end()
        self.send("* BYE pop3gui demo IMAP server logging out")
        self.done = True
        self.folder = None
        return "LOGOUT completed"

    # --- logging in ------------------------------------------------------------------------

    async def starttls(self, args: Args, uid: bool) -> str:
        args.end()
        if self.server.tls is None or self.encrypted:
            raise Bad("STARTTLS is not offered on this connection")
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
            raise No("PRIVACYREQUIRED", "start TLS first (STARTTLS)")

    async def login(self, args: Args, uid: bool) -> str:
        user, password = args.string(), args.string()
        args.end()
        self.privacy()
        box = self.server.mailboxes.get(user)
        if box is not None and box.oauth:
            raise No("AUTHENTICATIONFAILED", "this mailbox signs in with OAuth2 only: AUTHENTICATE XOAUTH2")
        if box is None or box.password != password:
            raise No("AUTHENTICATIONFAILED", "invalid user name or password")
        return self.log_in(user, box, "LOGIN")

    def log_in(self, user: str, box: Mailbox, method: str) -> str:
        self.user, self.box = user, box
        box.sessions += 1
        self.server.logins.append(Login(user, method))
        return f"[CAPABILITY {self.capabilities()}] logged in"

    async def authenticate(self, args: Args, uid: bool) -> str:
        mechanism = args.atom().upper()
        initial = args.atom() if args.more() else None
        args.end()
        if mechanism not in AUTH_MECHANISMS:
            raise No("", f"unsupported mechanism; this server offers {', '.join(AUTH_MECHANISMS)}")
        self.privacy()
        if initial is None:
            self.send("+ ")
            response = await self.sasl_line()
        else:
            response = "" if initial == "=" else initial
        if response == "*":
            raise Bad("AUTHENTICATE cancelled")
        if mechanism == "PLAIN":
            return self.plain(response)
        return await self.bearer(mechanism, response)

    async def sasl_line(self) -> str:
        await self.writer.drain()
        line = await self.read_line()
        if line is None:
            self.done = True
            raise Gone()
        return line.decode("ascii", errors="replace").rstrip("\r\n")

    def plain(self, response: str) -> str:
        try:
            parts = base64.b64decode(response, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            raise Bad("the PLAIN response is not base64") from None
        if len(parts) != 3:
            raise Bad("a PLAIN response is authzid NUL user NUL password")
        authzid, user, password = (p.decode("utf-8", errors="replace") for p in parts)
        box = self.server.mailboxes.get(user)
        if authzid not in ("", user) or box is None or box.oauth or box.password != password:
            raise No("AUTHENTICATIONFAILED", "Authentication failed.")
        return self.log_in(user, box, "AUTHENTICATE PLAIN")

    async def bearer(self, mechanism: str, response: str) -> str:
        bearer = parse_bearer(mechanism, response)
        if bearer is None:
            raise Bad(f"malformed {mechanism} response")
        check = self.server.token_check
        owner = check(bearer.token) if check is not None else None
        user = bearer.user or owner or ""
        box = self.server.mailboxes.get(user)
        if box is None or not box.oauth or owner is None or owner.lower() != user.lower():
            self.send("+ " + error_challenge(mechanism, scope="imap"))
            await self.sasl_line()  # whatever the client answers, the exchange ends in NO
            raise No("AUTHENTICATIONFAILED", "Authentication failed.")
        return self.log_in(user, box, mechanism)
