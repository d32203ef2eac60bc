"""A small asyncio POP3 server for the demo sandbox (RFC 1939, CAPA per RFC 2449).

It serves in-memory mailboxes ``{user: (password, [message bytes])}`` on
127.0.0.1 (port 0: read :attr:`DemoPop3Server.port` after :meth:`start`) so
that ``pop3gui demo`` can show the connector working with nothing installed.
It is correct rather than clever: USER/PASS login, STAT, LIST, UIDL, RETR
(dot-stuffed), TOP, DELE (applied only on a QUIT in the transaction state, as
RFC 1939 says; a dropped session deletes nothing), RSET, NOOP, QUIT, and one
session per mailbox at a time (``-ERR [IN-USE]``, RFC 2449).

A mailbox added with ``oauth=True`` takes no password: it logs in only with
an OAuth2 access token, over SASL (RFC 5034) ``AUTH XOAUTH2`` or ``AUTH
OAUTHBEARER`` (RFC 7628), with the response on the command line or after the
``+`` continuation.  The server's *token_check* says whose a token is.  A
refused token is answered as Dovecot does: a ``+`` continuation carrying the
error as base64 JSON, then, after the client's answer, ``-ERR [AUTH]``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CAPABILITIES = ("USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL XOAUTH2 OAUTHBEARER",
                "IMPLEMENTATION pop3gui-demo")
MAX_COMMAND = 255  # RFC 2449: a command line is at most 255 octets with its CRLF
MAX_SASL_LINE = 16 * 1024  # a SASL response carries a token and may be longer than a command
OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
AUTH_FAILED = "-ERR [AUTH] Authentication failed."  # Dovecot's words


def to_crlf(data: bytes) -> bytes:
    """The message with every line ending a CRLF and a final line break (POP3 sizes count CRLF)."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def stuff(data: bytes) -> bytes:
    """Byte-stuff a CRLF message for a multi-line reply (RFC 1939 §3), terminator included."""
    lines = data.split(b"\r\n")[:-1]
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


@dataclass
class _Message:
    uid: str
    data: bytes  # CRLF line endings


@dataclass
class Mailbox:
    password: str
    messages: list[_Message] = field(default_factory=list)
    sessions: int = 0  # logins that succeeded
    locked: bool = False
    oauth: bool = False  # logs in only with an OAuth2 access token, never with a password


@dataclass(frozen=True)
class Login:
    """A login that succeeded: the user, and how (``USER/PASS``, ``XOAUTH2`` or ``OAUTHBEARER``)."""

    user: str
    method: str


@dataclass(frozen=True)
class _Bearer:
    """A SASL XOAUTH2 or OAUTHBEARER response taken apart."""

    user: str  # "" when OAUTHBEARER names no authorization identity
    token: str


def parse_bearer(mechanism: str, text: str) -> _Bearer | None:
    """The user and token of a base64 XOAUTH2 or OAUTHBEARER response; None when it is malformed.

    XOAUTH2: ``user=U^Aauth=Bearer T^A^A``.  OAUTHBEARER (RFC 7628): a GS2
    header ``n,a=U,`` (the user may be left out), then ``key=value`` pairs
    ending in ``^A^A``, among them ``auth=Bearer T``.
    """
    try:
        raw = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not raw.endswith("\x01\x01"):
        return None
    parts = raw.split("\x01")
    user = ""
    if mechanism == "OAUTHBEARER":
        gs2 = parts.pop(0).split(",")
        if len(gs2) != 3 or gs2[0] not in ("n", "y") or gs2[2] or (gs2[1] and not gs2[1].startswith("a=")):
            return None
        user = gs2[1][2:].replace("=2C", ",").replace("=3D", "=")
    pairs: dict[str, str] = {}
    for part in filter(None, parts):
        key, sep, value = part.partition("=")
        if not sep:
            return None
        pairs[key] = value
    scheme, _, token = pairs.get("auth", "").partition(" ")
    if mechanism == "XOAUTH2":
        user = pairs.get("user", "")
        if not user:
            return None
    if scheme.lower() != "bearer" or not token:
        return None
    return _Bearer(user, token)


def error_challenge(mechanism: str, scope: str = "pop") -> str:
    """The ``+`` continuation's base64 JSON for a refused token (RFC 7628 §3.2.2; XOAUTH2 as Google words it)."""
    status = "invalid_token" if mechanism == "OAUTHBEARER" else "401"
    data = json.dumps({"status": status, "schemes": "bearer", "scope": scope}, separators=(",", ":"))
    return base64.b64encode(data.encode()).decode("ascii")


class DemoPop3Server:
    """In-memory POP3 mailboxes on loopback; see the module docstring."""

    def __init__(self, mailboxes: Mapping[str, tuple[str, Sequence[bytes]]] | None = None, *,
                 host: str = "127.0.0.1", idle_timeout: float = 600.0,
                 token_check: Callable[[str], str | None] | None = None) -> None:
        self.host = host
        self.port = 0
        self.idle_timeout = idle_timeout
        self.token_check = token_check  # access token -> the user it was issued to, or None
        self.mailboxes: dict[str, Mailbox] = {}
        self.logins: list[Login] = []
        self._uids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        for user, (password, messages) in (mailboxes or {}).items():
            self.add_mailbox(user, password, messages)

    # --- the mailboxes ------------------------------------------------------------

    def add_mailbox(self, user: str, password: str, messages: Sequence[bytes] = (), *, oauth: bool = False) -> None:
        """A mailbox that logs in with *password*, or with *oauth* only with an access token for *user*."""
        self.mailboxes[user] = Mailbox("" if oauth else password, oauth=oauth)
        for data in messages:
            self.add_message(user, data)

    def add_message(self, user: str, data: bytes) -> str:
        """Store a message (line endings become CRLF); returns its unique id."""
        uid = f"demo-{next(self._uids):06d}"
        self.mailboxes[user].messages.append(_Message(uid, to_crlf(data)))
        return uid

    def messages(self, user: str) -> list[bytes]:
        """The messages still stored in a mailbox."""
        return [m.data for m in self.mailboxes[user].messages]

    def sessions(self, user: str) -> int:
        return self.mailboxes[user].sessions

    # --- serving ------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
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
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or idled out: nothing is deleted
        except asyncio.CancelledError:
            pass  # stop(): the session ends here (asyncio would log a cancelled connection task as an error)
        finally:
            session.unlock()
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Session:
    """One connection: AUTHORIZATION state, then TRANSACTION, then UPDATE on QUIT."""

    def __init__(self, server: DemoPop3Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user = ""  # after a USER command
        self.box: Mailbox | None = None  # after a successful login
        self.deleted: set[int] = set()  # message numbers marked by DELE
        self.sasl: str | None = None  # the mechanism of an AUTH waiting for the client's response
        self.sasl_refused = False  # the error challenge was sent: whatever comes next, -ERR

    def unlock(self) -> None:
        if self.box is not None:
            self.box.locked = False

    def send(self, line: str) -> None:
        self.writer.write(line.encode("utf-8") + b"\r\n")

    async def run(self) -> None:
        self.send("+OK pop3gui demo POP3 server ready")
        while True:
            await self.writer.drain()
            raw = await asyncio.wait_for(self.reader.readline(), self.server.idle_timeout)
            if not raw:
                return
            if self.sasl is not None:  # the client's response in a SASL exchange, not a command
                self.sasl_step(raw)
                continue
            if len(raw) > MAX_COMMAND:
                self.send("-ERR command line too long")
                continue
            verb, _, arg = raw.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            if not self.dispatch(verb.upper(), arg):
                await self.writer.drain()
                return

    def dispatch(self, verb: str, arg: str) -> bool:
        """Answer one command; False once the session is over."""
        if verb == "QUIT":
            if self.box is not None:  # UPDATE state: now, and only now, DELE takes effect
                self.box.messages = [m for i, m in enumerate(self.box.messages, 1) if i not in self.deleted]
            self.send("+OK bye")
            return False
        if verb == "CAPA":
            self.send("+OK capability list follows")
            for cap in CAPABILITIES:
                self.send(cap)
            self.send(".")
        elif verb == "NOOP" and self.box is not None:
            self.send("+OK")
        elif self.box is None:
            self.authorize(verb, arg)
        else:
            self.transact(verb, arg.split())
        return True

    def authorize(self, verb: str, arg: str) -> None:
        if verb == "USER" and arg:
            self.user = arg
            self.send("+OK send PASS")
        elif verb == "PASS" and self.user:
            box = self.server.mailboxes.get(self.user)
            if box is not None and box.oauth:
                self.user = ""
                self.send("-ERR [AUTH] this mailbox signs in with OAuth2 only: use AUTH XOAUTH2 or AUTH OAUTHBEARER")
            elif box is None or box.password != arg:
                self.user = ""
                self.send("-ERR [AUTH] invalid user name or password")
            else:
                self.log_in(self.user, box, "USER/PASS")
        elif verb == "AUTH":
            self.auth(arg)
        else:
            self.send("-ERR log in first: USER and PASS, or AUTH")

    def log_in(self, user: str, box: Mailbox, method: str) -> None:
        if box.locked:
            self.send("-ERR [IN-USE] the mailbox is in use by another session")
            return
        box.locked, box.sessions, self.box = True, box.sessions + 1, box
        self.server.logins.append(Login(user, method))
        self.send(f"+OK logged in; {len(box.messages)} message(s)")

    # --- SASL: AUTH XOAUTH2 and AUTH OAUTHBEARER -------------------------------------------

    def auth(self, arg: str) -> None:
        """``AUTH mechanism [initial-response]`` (RFC 5034); "=" is an empty initial response."""
        mechanism, _, initial = arg.strip().partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in OAUTH_MECHANISMS:
            self.send("-ERR [AUTH] unsupported SASL mechanism; this server offers XOAUTH2 and OAUTHBEARER")
            return
        self.sasl = mechanism
        initial = initial.strip()
        if initial:
            self.sasl_response("" if initial == "=" else initial)
        else:
            self.send("+ ")

    def sasl_step(self, raw: bytes) -> None:
        if self.sasl_refused:  # the client's answer to the error challenge ends the exchange
            self.sasl, self.sasl_refused = None, False
            self.send(AUTH_FAILED)
        elif len(raw) > MAX_SASL_LINE:
            self.sasl = None
            self.send("-ERR [AUTH] SASL response too long")
        else:
            self.sasl_response(raw.decode("ascii", "replace").rstrip("\r\n"))

    def sasl_response(self, text: str) -> None:
        mechanism = self.sasl
        assert mechanism is not None
        if text == "*":
            self.sasl = None
            self.send("-ERR [AUTH] authentication cancelled")
            return
        bearer = parse_bearer(mechanism, text)
        if bearer is None:
            self.sasl = None
            self.send(f"-ERR [AUTH] malformed {mechanism} response")
            return
        owner = self.server.token_check(bearer.token) if self.server.token_check is not None else None
        user = bearer.user or owner or ""
        box = self.server.mailboxes.get(user)
        if box is None or not box.oauth or owner is None or owner.lower() != user.lower():
            self.sasl_refused = True
            self.send("+ " + error_challenge(mechanism))
            return
        self.sasl = None
        self.log_in(user, box, mechanism)

    def live(self) -> dict[int, _Message]:
        assert self.box is not None
        return {i: m for i, m in enumerate(self.box.messages, 1) if i not in self.deleted}

    def message(self, arg: str) -> tuple[int, _Message] | None:
        """The message named by a number argument, or None after sending -ERR."""
        number = int(arg) if arg.isdigit() else 0
        found = self.live().get(number)
        if found is None:
            self.send(f"-ERR no such message: {arg}")
            return None
        return number, found

    def transact(self, verb: str, args: list[str]) -> None:
        live = self.live()
        if verb == "STAT" and not args:
            self.send(f"+OK {len(live)} {sum(len(m.data) for m in live.values())}")
        elif verb in ("LIST", "UIDL") and len(args) <= 1:
            def item(m: _Message) -> str:
                return str(len(m.data)) if verb == "LIST" else m.uid
            if args:
                if (found := self.message(args[0])) is not None:
                    self.send(f"+OK {found[0]} {item(found[1])}")
                return
            self.send(f"+OK {len(live)} message(s)")
            for number, m in live.items():
                self.send(f"{number} {item(m)}")
            self.send(".")
        elif verb == "RETR" and len(args) == 1:
            if (found := self.message(args[0])) is not None:
                self.send(f"+OK {len(found[1].data)} octets")
                self.writer.write(stuff(found[1].data))
        elif verb == "TOP" and len(args) == 2 and args[1].isdigit():
            if (found := self.message(args[0])) is not None:
                head, sep, body = found[1].data.partition(b"\r\n\r\n")
                lines = body.split(b"\r\n")[:-1][: int(args[1])]
                self.send("+OK top of message follows")
                self.writer.write(stuff(head + sep + b"".join(ln + b"\r\n" for ln in lines) if sep else head))
        elif verb == "DELE" and len(args) == 1:
            if (found := self.message(args[0])) is not None:
                self.deleted.add(found[0])
                self.send(f"+OK message {found[0]} marked for deletion")
        elif verb == "RSET" and not args:
            self.deleted.clear()
            self.send(f"+OK {len(self.live())} message(s)")
        else:
            self.send(f"-ERR unknown command or wrong arguments: {verb}")
