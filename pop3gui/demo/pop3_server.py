"""A small asyncio POP3 server for the demo sandbox (RFC 1939, CAPA per RFC 2449).

It serves in-memory mailboxes ``{user: (password, [message bytes])}`` on
127.0.0.1 (port 0: read :attr:`DemoPop3Server.port` after :meth:`start`) so
that ``pop3gui demo`` can show the connector working with nothing installed.
It is correct rather than clever: USER/PASS login, STAT, LIST, UIDL, RETR
(dot-stuffed), TOP, DELE (applied only on a QUIT in the transaction state, as
RFC 1939 says; a dropped session deletes nothing), RSET, NOOP, QUIT, and one
session per mailbox at a time (``-ERR [IN-USE]``, RFC 2449).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CAPABILITIES = ("USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "IMPLEMENTATION pop3gui-demo")
MAX_COMMAND = 255  # RFC 2449: a command line is at most 255 octets with its CRLF


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


class DemoPop3Server:
    """In-memory POP3 mailboxes on loopback; see the module docstring."""

    def __init__(self, mailboxes: Mapping[str, tuple[str, Sequence[bytes]]] | None = None, *,
                 host: str = "127.0.0.1", idle_timeout: float = 600.0) -> None:
        self.host = host
        self.port = 0
        self.idle_timeout = idle_timeout
        self.mailboxes: dict[str, Mailbox] = {}
        self._uids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        for user, (password, messages) in (mailboxes or {}).items():
            self.add_mailbox(user, password, messages)

    # --- the mailboxes ------------------------------------------------------------

    def add_mailbox(self, user: str, password: str, messages: Sequence[bytes] = ()) -> None:
        self.mailboxes[user] = Mailbox(password)
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
        self.box: Mailbox | None = None  # after a successful PASS
        self.deleted: set[int] = set()  # message numbers marked by DELE

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
            if box is None or box.password != arg:
                self.user = ""
                self.send("-ERR [AUTH] invalid user name or password")
            elif box.locked:
                self.send("-ERR [IN-USE] the mailbox is in use by another session")
            else:
                box.locked, box.sessions, self.box = True, box.sessions + 1, box
                self.send(f"+OK logged in; {len(box.messages)} message(s)")
        else:
            self.send("-ERR log in first with USER and PASS")

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
