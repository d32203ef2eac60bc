"""A scripted POP3 server for tests: real sockets, but faults on demand.

Real servers (Dovecot in ``tests/servers``) are correct; the client and the
worker must also survive servers that are not. This one serves a mailbox from
memory on 127.0.0.1 (port 0, read ``.port`` after ``start()``) and can be told
to misbehave.

Usage::

    async with ScriptedPop3Server([b"Subject: a\\r\\n\\r\\nbody\\r\\n"]) as srv:
        async with Pop3Client("127.0.0.1", srv.port, security="none") as pop:
            ...
        assert srv.mailbox == []          # after RETR + DELE + QUIT

Knobs (all keyword arguments):

``user``, ``password``
    The one account (default ``"user"`` / ``"pass"``); USER/PASS, APOP and
    AUTH PLAIN (with or without initial response) check against it.
``greeting``
    The text after ``+OK`` in the greeting (default carries an APOP timestamp);
    ``greeting_line`` replaces the whole greeting line, e.g. ``"-ERR go away"``.
``capa``
    The CAPA listing; ``None`` builds one from the other knobs; ``False`` makes
    CAPA answer ``-ERR`` (a server without CAPA).
``sasl``
    SASL mechanisms announced in CAPA (default ``["PLAIN"]``; ``[]`` for none).
``uidl``
    False: no UIDL in CAPA and UIDL answers ``-ERR``.
``uids``
    Unique ids for the messages (default ``uid-1`` ...); may hold duplicates.
``list_sizes``
    Sizes LIST reports instead of the true ones (a lying server).
``pipelining``
    Announce PIPELINING in CAPA.
``replies``
    ``{"PASS": "-ERR [IN-USE] locked"}``: a reply sent instead of the normal
    one for a command verb (the command still does nothing else). A list
    value is consumed one reply per use, then normal behaviour resumes.
``drop_retr``
    ``(n, k)``: during RETR of message n, send the status line and the first
    k bytes of the framed data, then drop the connection.
``stall``
    Command verbs that are read but never answered (``{"RETR"}``).
``bare_lf``
    Send every line ending as a bare LF instead of CRLF.
``token``
    The OAuth2 access token SASL XOAUTH2 and OAUTHBEARER accept for ``user``
    (default ``"token"``); either form (initial response or after ``+``).
``unlisted_sasl``
    Mechanisms accepted though CAPA does not list them (as Exchange Online
    does with XOAUTH2).
``oauth_challenge``
    What a refused token gets before the final -ERR: ``True`` (default)
    Dovecot's ``+ base64(JSON)`` for the mechanism; a string, that text after
    ``"+ "`` (for garbage); ``False``, no challenge: -ERR at once.
``oauth_final``
    The reply that ends a refused token's sign-in, after the challenge if
    there is one (default Dovecot's ``-ERR [AUTH] Authentication failed.``);
    ``None`` never answers.
``tls_context``
    Server-side SSLContext: speak implicit TLS (like port 995).
``stls_context``
    Server-side SSLContext: announce STLS and upgrade on it (RFC 2595).
``stls_inject``
    Bytes sent right after ``+OK`` to STLS, before TLS (an injection attack).

What it records: ``commands`` (every command line, passwords included, so
tests can assert exactly what went over the wire; ``on_command``, if set, is
called with each line as it arrives), ``sessions`` (connections
accepted), ``mailbox`` (messages still stored) and ``oauth_logins`` (each
XOAUTH2/OAUTHBEARER response taken apart: ``mechanism``, ``form``
("initial" or "continued"), ``user``, ``token``, for OAUTHBEARER ``gs2``,
``host`` and ``port``, and the client's ``answer`` to a challenge). DELE only takes effect on
QUIT; a dropped or aborted session rolls its deletions back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Self


class _Entry:
    """A stored message; identity matters so QUIT deletes exactly what was marked."""

    def __init__(self, data: bytes, uid: str) -> None:
        self.data = data
        self.uid = uid


class ScriptedPop3Server:
    """An in-memory POP3 server with fault knobs; see the module docstring."""

    def __init__(
        self,
        messages: Sequence[bytes] = (),
        *,
        user: str = "user",
        password: str = "pass",
        greeting: str = "scripted POP3 ready <1896.697170952@dbc.mtview.ca.us>",
        greeting_line: str | None = None,
        capa: Sequence[str] | bool | None = None,
        sasl: Sequence[str] = ("PLAIN",),
        uidl: bool = True,
        uids: Sequence[str] | None = None,
        list_sizes: Sequence[int] | None = None,
        pipelining: bool = False,
        replies: dict[str, str | list[str]] | None = None,
        drop_retr: tuple[int, int] | None = None,
        stall: Iterable[str] = (),
        bare_lf: bool = False,
        tls_context: ssl.SSLContext | None = None,
        stls_context: ssl.SSLContext | None = None,
        stls_inject: bytes = b"",
        login_handoff: bool = False,
        token: str = "token",
        unlisted_sasl: Sequence[str] = (),
        oauth_challenge: str | bool = True,
        oauth_final: str | None = "-ERR [AUTH] Authentication failed.",
    ) -> None:
        ids = (
            list(uids)
            if uids is not None
            else [f"uid-{i}" for i in range(1, len(messages) + 1)]
        )
        self._entries = [_Entry(m, u) for m, u in zip(messages, ids, strict=True)]
        self.user = user
        self.password = password
        self.greeting = greeting
        self.greeting_line = greeting_line
        self.capa = capa
        self.sasl = list(sasl)
        self.uidl = uidl
        self.list_sizes = list(list_sizes) if list_sizes is not None else None
        self.pipelining = pipelining
        self.replies: dict[str, str | list[str]] = dict(replies or {})
        self.drop_retr = drop_retr
        self.stall = {s.upper() for s in stall}
        self.bare_lf = bare_lf
        self.tls_context = tls_context
        self.stls_context = stls_context
        self.stls_inject = stls_inject
        self.login_handoff = login_handoff
        self.token = token
        self.unlisted_sasl = list(unlisted_sasl)
        self.oauth_challenge = oauth_challenge
        self.oauth_final = oauth_final
        self.oauth_logins: list[dict[str, str]] = []
        self.lost_after_login: list[bytes] = []  # with login_handoff: what each login swallowed
        self.commands: list[str] = []
        self.on_command: Callable[[str], None] | None = None
        self.sessions = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self.port = 0

    # ----------------------------------------------------------- lifecycle

    @property
    def mailbox(self) -> list[bytes]:
        """The messages still stored (deletions appear only after a QUIT)."""
        return [e.data for e in self._entries]

    def add(self, data: bytes, uid: str | None = None) -> None:
        """Deliver one more message into the mailbox."""
        self._entries.append(_Entry(data, uid or f"uid-{len(self._entries) + 1}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.tls_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open session (their DELEs roll back)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            # Aborted sessions end on their own; cancelling would make asyncio log noise.
            _, stuck = await asyncio.wait(list(self._tasks), timeout=2)
            for task in stuck:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -------------------------------------------------------------- session

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.sessions += 1
        try:
            await _Session(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)

    def _capa_lines(self, *, tls_active: bool, authed: bool) -> list[str] | None:
        if self.capa is False:
            return None
        if isinstance(self.capa, Sequence) and not isinstance(self.capa, str | bool):
            return list(self.capa)
        lines = ["TOP", "USER", "RESP-CODES", "AUTH-RESP-CODE"]
        if self.uidl:
            lines.append("UIDL")
        if self.pipelining:
            lines.append("PIPELINING")
        if self.sasl:
            lines.append("SASL " + " ".join(self.sasl))
        if self.stls_context is not None and not tls_active and not authed:
            lines.append("STLS")
        return lines


class _Session:
    """One connection's state: authorization, then transaction with DELE marks."""

    def __init__(
        self,
        srv: ScriptedPop3Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.srv = srv
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.authed = False
        self.tls_active = srv.tls_context is not None
        self.maildrop: list[_Entry] = []
        self.deleted: set[int] = set()

    def eol(self) -> bytes:
        return b"\n" if self.srv.bare_lf else b"\r\n"

    async def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if self.srv.bare_lf:
            data = data.replace(b"\r\n", b"\n")
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        srv = self.srv
        await self.send(srv.greeting_line or f"+OK {srv.greeting}")
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
            srv.commands.append(line)
            if srv.on_command is not None:
                srv.on_command(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in srv.stall:
                await self.reader.read()  # never answer; wait for the client to hang up
                return
            override = srv.replies.get(verb)
            if isinstance(override, list):
                if override:
                    reply = override.pop(0)
                    await self.send(reply)
                    continue
            elif override is not None:
                await self.send(override)
                continue
            handler = getattr(self, "do_" + verb.lower(), None)
            if handler is None:
                await self.send("-ERR unknown command")
                continue
            if await handler(arg) is False:
                return

    # ---------------------------------------------------- authorization

    async def do_capa(self, arg: str) -> None:
        lines = self.srv._capa_lines(tls_active=self.tls_active, authed=self.authed)
        if lines is None:
            await self.send("-ERR unknown command")
            return
        await self.send("\r\n".join(["+OK capability list follows", *lines, "."]))

    async def do_stls(self, arg: str) -> None:
        ctx = self.srv.stls_context
        if ctx is None or self.tls_active or self.authed:
            await self.send("-ERR STLS not available")
            return
        # The injected bytes share one write with the +OK, as an attacker's would.
        self.writer.write(b"+OK begin TLS negotiation\r\n" + self.srv.stls_inject)
        await self.writer.drain()
        await self.writer.start_tls(ctx)
        self.tls_active = True
        self.user = None

    async def do_user(self, arg: str) -> None:
        if self.authed:
            await self.send("-ERR already authenticated")
            return
        self.user = arg
        await self.send("+OK send PASS")

    async def do_pass(self, arg: str) -> None:
        if self.authed or self.user is None:
            await self.send("-ERR USER first")
            return
        await self._finish_login(
            self.user == self.srv.user and arg == self.srv.password
        )

    async def do_apop(self, arg: str) -> None:
        user, _, digest = arg.partition(" ")
        match = re.search(r"<[^<>\s]+>", self.srv.greeting_line or self.srv.greeting)
        if match is None:
            await self.send("-ERR APOP not supported")
            return
        good = hashlib.md5((match.group(0) + self.srv.password).encode()).hexdigest()
        await self._finish_login(user == self.srv.user and digest == good)

    async def do_auth(self, arg: str) -> bool | None:
        mech, _, initial = arg.partition(" ")
        offered = [m.upper() for m in [*self.srv.sasl, *self.srv.unlisted_sasl]]
        if mech.upper() not in offered or mech.upper() not in ("PLAIN", "XOAUTH2", "OAUTHBEARER"):
            await self.send("-ERR unsupported mechanism")
            return None
        if mech.upper() != "PLAIN":
            return await self._auth_oauth(mech.upper(), initial)
        if not initial:
            await self.send("+ ")
            raw = await self.reader.readline()
            initial = raw.rstrip(b"\r\n").decode()
            self.srv.commands.append(initial)
        try:
            authz, authc, pwd = base64.b64decode(initial, validate=True).split(b"\0")
        except ValueError:
            await self.send("-ERR [AUTH] malformed PLAIN response")
            return None
        ok = authz in (b"", authc) and authc.decode() == self.srv.user
        await self._finish_login(ok and pwd.decode() == self.srv.password)
        return None

    async def _auth_oauth(self, mech: str, initial: str) -> bool | None:
        """XOAUTH2 or OAUTHBEARER; a refused token gets Dovecot's error challenge unless told otherwise."""
        record = {"mechanism": mech, "form": "initial" if initial else "continued"}
        if not initial:
            await self.send("+ ")
            raw = await self.reader.readline()
            initial = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
            self.srv.commands.append(initial)
        try:
            fields = base64.b64decode(initial, validate=True).decode().split("\x01")
        except ValueError:
            await self.send("-ERR [AUTH] malformed response")
            return None
        if mech == "OAUTHBEARER":
            record["gs2"] = fields.pop(0)
            authzid = record["gs2"].removeprefix("n,a=").removesuffix(",")
            record["user"] = authzid.replace("=2C", ",").replace("=3D", "=")
        pairs = dict(f.partition("=")[::2] for f in fields if f)
        if mech == "XOAUTH2":
            record["user"] = pairs.get("user", "")
        else:
            record.update(host=pairs.get("host", ""), port=pairs.get("port", ""))
        record["token"] = pairs.get("auth", "").removeprefix("Bearer ")
        self.srv.oauth_logins.append(record)
        if record["user"] == self.srv.user and record["token"] == self.srv.token:
            await self._finish_login(True)
            return None
        challenge = self.srv.oauth_challenge
        if challenge is False:
            return await self._oauth_refused()
        if challenge is True:
            error = {"status": "401", "schemes": "bearer", "scope": "mail"} if mech == "XOAUTH2" else {
                "status": "invalid_token"}
            challenge = base64.b64encode(json.dumps(error, separators=(",", ":")).encode()).decode()
        await self.send(f"+ {challenge}")
        raw = await self.reader.readline()
        if not raw:
            return False
        record["answer"] = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        self.srv.commands.append(record["answer"])
        return await self._oauth_refused()

    async def _oauth_refused(self) -> bool | None:
        """The final reply to a refused token (``oauth_final``), or silence."""
        self.user = None
        if self.srv.oauth_final is None:
            await self.reader.read()  # never answer; wait for the client to hang up
            return False
        await self.send(self.srv.oauth_final)
        return None

    async def _finish_login(self, ok: bool) -> None:
        if not ok:
            self.user = None
            await self.send("-ERR [AUTH] invalid user name or password")
            return
        self.authed = True
        self.maildrop = list(self.srv._entries)
        if self.srv.login_handoff:
            # Like a server that hands the connection to a mailbox process after
            # login (Courier): whatever came with the login command is lost.
            try:
                async with asyncio.timeout(0.2):
                    lost = await self.reader.read(65536)
            except TimeoutError:
                lost = b""
            self.srv.lost_after_login.append(lost)
        await self.send("+OK mailbox locked and ready")

    # ------------------------------------------------------- transaction

    async def _need_auth(self) -> bool:
        if not self.authed:
            await self.send("-ERR not authenticated")
        return self.authed

    async def _message(self, word: str) -> int | None:
        """A live message index (0-based) from a message-number argument."""
        if word.isdigit() and 1 <= int(word) <= len(self.maildrop):
            index = int(word) - 1
            if index not in self.deleted:
                return index
        await self.send("-ERR no such message")
        return None

    def _live(self) -> list[int]:
        return [i for i in range(len(self.maildrop)) if i not in self.deleted]

    def _size(self, index: int) -> int:
        sizes = self.srv.list_sizes
        if sizes is not None and index < len(sizes):
            return sizes[index]
        return len(self.maildrop[index].data)

    async def do_stat(self, arg: str) -> None:
        if await self._need_auth():
            live = self._live()
            total = sum(len(self.maildrop[i].data) for i in live)
            await self.send(f"+OK {len(live)} {total}")

    async def do_list(self, arg: str) -> None:
        if not await self._need_auth():
            return
        if arg:
            index = await self._message(arg)
            if index is not None:
                await self.send(f"+OK {index + 1} {self._size(index)}")
            return
        lines = [f"{i + 1} {self._size(i)}" for i in self._live()]
        await self.send("\r\n".join(["+OK scan listing follows", *lines, "."]))

    async def do_uidl(self, arg: str) -> None:
        if not await self._need_auth():
            return
        if not self.srv.uidl:
            await self.send("-ERR unknown command")
            return
        if arg:
            index = await self._message(arg)
            if index is not None:
                await self.send(f"+OK {index + 1} {self.maildrop[index].uid}")
            return
        lines = [f"{i + 1} {self.maildrop[i].uid}" for i in self._live()]
        await self.send("\r\n".join(["+OK unique-id listing follows", *lines, "."]))

    async def do_retr(self, arg: str) -> bool:
        if not await self._need_auth():
            return True
        index = await self._message(arg)
        if index is None:
            return True
        data = self.maildrop[index].data
        await self.send(f"+OK {len(data)} octets")
        framed = frame(data, bare_lf=self.srv.bare_lf)
        drop = self.srv.drop_retr
        if drop is not None and drop[0] == index + 1:
            self.writer.write(framed[: drop[1]])
            await self.writer.drain()
            self.writer.transport.abort()
            return False
        self.writer.write(framed)
        await self.writer.drain()
        return True

    async def do_top(self, arg: str) -> None:
        if not await self._need_auth():
            return
        word, _, count = arg.partition(" ")
        if not count.isdigit():
            await self.send("-ERR TOP needs a line count")
            return
        index = await self._message(word)
        if index is None:
            return
        data = self.maildrop[index].data
        head, sep, body = data.partition(b"\r\n\r\n")
        body_lines = body.split(b"\r\n")[: int(count)] if body else []
        part = (
            head + sep + b"".join(line + b"\r\n" for line in body_lines)
            if sep
            else head
        )
        await self.send("+OK top of message follows")
        self.writer.write(frame(part, bare_lf=self.srv.bare_lf))
        await self.writer.drain()

    async def do_dele(self, arg: str) -> None:
        if not await self._need_auth():
            return
        index = await self._message(arg)
        if index is not None:
            self.deleted.add(index)
            await self.send(f"+OK message {index + 1} deleted")

    async def do_rset(self, arg: str) -> None:
        if await self._need_auth():
            self.deleted.clear()
            await self.send("+OK")

    async def do_noop(self, arg: str) -> None:
        if await self._need_auth():
            await self.send("+OK")

    async def do_quit(self, arg: str) -> bool:
        if self.authed:
            gone = {id(self.maildrop[i]) for i in self.deleted}
            self.srv._entries = [e for e in self.srv._entries if id(e) not in gone]
        await self.send("+OK bye")
        return False


def frame(data: bytes, *, bare_lf: bool = False) -> bytes:
    """A message as multi-line POP3 data: CRLF lines, dot-stuffed, '.' terminated."""
    out = bytearray()
    for line in re.split(rb"(?<=\n)", data):
        if not line:
            continue
        body = line[:-1] if line.endswith(b"\n") else line
        if body.endswith(b"\r"):
            body = body[:-1]
        if body.startswith(b"."):
            body = b"." + body
        out += body + (b"\n" if bare_lf else b"\r\n")
    out += b".\n" if bare_lf else b".\r\n"
    return bytes(out)
