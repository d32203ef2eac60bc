"""A scripted IMAP4rev1 server for tests: real sockets, but faults on demand.

Like ``scripted_pop3``: folders of messages in memory, served on 127.0.0.1
(port 0, read ``.port`` after ``start()``), and knobs that make it misbehave
the ways real servers and networks do.

Usage::

    async with ScriptedImapServer([b"Subject: a\\r\\n\\r\\nbody\\r\\n"]) as srv:
        async with ImapClient("127.0.0.1", srv.port, security="none") as imap:
            await imap.login("user", "pass")
            await imap.select("INBOX")
            ...
        assert srv.folder("INBOX").uids == [1]

Folders are named as they go over the wire (modified UTF-7, ``"Entw&APw-rfe"``);
``folder(name)`` holds ``uidvalidity`` (change it between sessions), ``messages``
(``ImapMessage``: ``uid``, ``flags``, ``data``) and ``uidnext``. ``deliver()``
adds a message and tells every session IDLEing on that folder (``* n EXISTS``).

Knobs (all keyword arguments):

``folders``
    More folders, ``{"Archive": [b"..."]}``; INBOX always exists. A message is
    bytes or an ``ImapMessage`` (to give it flags, e.g. ``{"\\\\Deleted"}``).
``user``, ``password``, ``token``
    The one account: LOGIN and AUTHENTICATE PLAIN check the password,
    XOAUTH2 and OAUTHBEARER the access token.
``capabilities``
    The exact CAPABILITY list; ``None`` builds it from ``uidplus``, ``move``,
    ``idle``, ``sasl_ir``, ``sasl`` (the AUTH= mechanisms, default PLAIN),
    ``logindisabled`` (announced, and LOGIN/PLAIN refused, until TLS) and
    STARTTLS (while ``starttls_context`` is set and TLS is not on yet).
``unlisted_sasl``
    Mechanisms accepted though not announced (Exchange Online and XOAUTH2).
``greeting_line``
    The whole greeting (``"* BYE too busy"``); ``preauth``: greet with PREAUTH.
``greeting_capability``, ``login_capability``
    Whether the greeting and the login's OK carry ``[CAPABILITY ...]`` (default yes).
``tls_context``
    Server-side SSLContext: implicit TLS (like port 993).
``starttls_context``, ``starttls_inject``
    STARTTLS with that context; bytes sent with its OK, before TLS (an injection).
``oauth_challenge``, ``oauth_final``
    What a refused token gets: ``True`` the base64 JSON error challenge, a
    string that text after ``"+ "``, ``False`` none; then ``oauth_final``
    after the tag (one starting with ``+`` or ``*`` goes as it is; ``None``:
    never answers).
``replies``
    ``{"SELECT": "NO [NONEXISTENT] gone"}``: sent after the command's tag
    instead of doing it; commands are named like ``"UID FETCH"``. A list is
    used one reply per command, then normal behaviour resumes.
``stall``
    Commands read but never answered.
``drop_fetch``
    ``(uid, k)``: in a UID FETCH of bodies, send that message's FETCH line and
    the first k bytes of its body, then drop the connection.
``fetch_refusal``
    ``(uid, reply)``: a UID FETCH of bodies sends the messages before that
    one, then ends with ``reply`` after its tag (``"NO [UNAVAILABLE] ..."``).
``literal_overrun``
    ``(uid, extra)``: that message's body literal announces its true size but
    ``extra`` bytes more follow.
``long_line``
    ``(command, n)``: before answering that command, an untagged line of n bytes.
``idle_mode``
    ``"normal"``; ``"no-continue"`` (IDLE is never answered); ``"no-done"``
    (DONE is never answered); ``"end"`` (the server ends the IDLE with its
    tagged OK after ``idle_end_after`` s); ``"bye"`` (``* BYE`` and hang up then).
``uid_after_body``
    FETCH responses put UID after ``BODY[]`` (allowed, and some servers do).
``expunge_during_fetch``
    UIDs that another client removes while a UID FETCH of bodies runs: the
    server says ``* n EXPUNGE`` instead of sending them.

What it records: ``commands`` (every line, secrets included), ``sessions``
and ``oauth_logins`` (as in ``scripted_pop3``).  ``hang_up()`` drops every
open connection at once, as a network outage does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass
class ImapMessage:
    data: bytes
    flags: set[str] = field(default_factory=set)
    uid: int = 0


class ImapFolder:
    def __init__(self, name: str, uidvalidity: int) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self.messages: list[ImapMessage] = []
        self.uidnext = 1

    def add(self, message: bytes | ImapMessage) -> ImapMessage:
        entry = message if isinstance(message, ImapMessage) else ImapMessage(message)
        entry = ImapMessage(entry.data, set(entry.flags), self.uidnext)
        self.uidnext += 1
        self.messages.append(entry)
        return entry

    @property
    def uids(self) -> list[int]:
        return [m.uid for m in self.messages]

    @property
    def bodies(self) -> list[bytes]:
        return [m.data for m in self.messages]


class ScriptedImapServer:
    """An in-memory IMAP server with fault knobs; see the module docstring."""

    def __init__(
        self,
        messages: Sequence[bytes | ImapMessage] = (),
        *,
        folders: Mapping[str, Sequence[bytes | ImapMessage]] | None = None,
        user: str = "user",
        password: str = "pass",
        token: str = "token",
        capabilities: Sequence[str] | None = None,
        uidplus: bool = True,
        move: bool = True,
        idle: bool = True,
        sasl_ir: bool = True,
        sasl: Sequence[str] = ("PLAIN",),
        unlisted_sasl: Sequence[str] = (),
        logindisabled: bool = False,
        greeting_line: str | None = None,
        preauth: bool = False,
        greeting_capability: bool = True,
        login_capability: bool = True,
        tls_context: ssl.SSLContext | None = None,
        starttls_context: ssl.SSLContext | None = None,
        starttls_inject: bytes = b"",
        oauth_challenge: str | bool = True,
        oauth_final: str | None = "NO [AUTHENTICATIONFAILED] Authentication failed.",
        replies: dict[str, str | list[str]] | None = None,
        stall: Iterable[str] = (),
        drop_fetch: tuple[int, int] | None = None,
        literal_overrun: tuple[int, bytes] | None = None,
        fetch_refusal: tuple[int, str] | None = None,
        long_line: tuple[str, int] | None = None,
        idle_mode: str = "normal",
        idle_end_after: float = 0.05,
        uid_after_body: bool = False,
        expunge_during_fetch: Iterable[int] = (),
    ) -> None:
        self.folders: dict[str, ImapFolder] = {}
        for name, content in {"INBOX": messages, **(folders or {})}.items():
            self.create(name)
            for message in content:
                self.folders[name].add(message)
        self.user, self.password, self.token = user, password, token
        self.capabilities = list(capabilities) if capabilities is not None else None
        self.uidplus, self.move, self.idle, self.sasl_ir = uidplus, move, idle, sasl_ir
        self.sasl = [m.upper() for m in sasl]
        self.unlisted_sasl = [m.upper() for m in unlisted_sasl]
        self.logindisabled = logindisabled
        self.greeting_line = greeting_line
        self.preauth = preauth
        self.greeting_capability = greeting_capability
        self.login_capability = login_capability
        self.tls_context = tls_context
        self.starttls_context = starttls_context
        self.starttls_inject = starttls_inject
        self.oauth_challenge = oauth_challenge
        self.oauth_final = oauth_final
        self.replies: dict[str, str | list[str]] = {k.upper(): v for k, v in (replies or {}).items()}
        self.stall = {s.upper() for s in stall}
        self.drop_fetch = drop_fetch
        self.literal_overrun = literal_overrun
        self.fetch_refusal = fetch_refusal
        self.long_line = (long_line[0].upper(), long_line[1]) if long_line else None
        self.idle_mode = idle_mode
        self.idle_end_after = idle_end_after
        self.uid_after_body = uid_after_body
        self.expunge_during_fetch = set(expunge_during_fetch)
        self.commands: list[str] = []
        self.oauth_logins: list[dict[str, str]] = []
        self.sessions = 0
        self._idlers: dict[str, set[asyncio.Event]] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self.port = 0

    # ----------------------------------------------------------- folders

    def folder(self, name: str) -> ImapFolder:
        return self.folders[name]

    def create(self, name: str) -> ImapFolder:
        return self.folders.setdefault(name, ImapFolder(name, 1000 + len(self.folders)))

    def deliver(self, data: bytes, folder: str = "INBOX") -> ImapMessage:
        """New mail: stored, and announced to every session IDLEing on the folder."""
        message = self.folders[folder].add(data)
        for event in self._idlers.get(folder, set()):
            event.set()
        return message

    def capability_list(self, *, tls_active: bool, authed: bool) -> list[str]:
        if self.capabilities is not None:
            return list(self.capabilities)
        caps = ["IMAP4rev1", "LITERAL+", "ENABLE"]
        caps += [name for name, on in (("SASL-IR", self.sasl_ir), ("UIDPLUS", self.uidplus), ("MOVE", self.move),
                                       ("IDLE", self.idle)) if on]
        if not authed:
            if self.starttls_context is not None and not tls_active:
                caps.append("STARTTLS")
            if self.logindisabled and not tls_active:
                caps.append("LOGINDISABLED")
            caps += [f"AUTH={m}" for m in self.sasl]
        return caps

    # ----------------------------------------------------------- lifecycle

    def hang_up(self) -> None:
        """Drop every open connection without a word (the server keeps listening for new ones)."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.tls_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
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

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def arguments(text: str) -> list[str]:
    """Command arguments: quoted strings (unescaped) and atoms; parenthesised lists stay atoms."""
    out = []
    for quoted_arg, atom in _ARG.findall(text):
        out.append(re.sub(r"\\(.)", r"\1", quoted_arg) if not atom else atom)
    return out


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(text: str, uids: list[int]) -> set[int]:
    """The UIDs of *uids* a UID sequence set names (``1:3,7,9:*``)."""
    top = max(uids, default=0)
    chosen: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        a = top if low == "*" else int(low)
        b = a if not high else top if high == "*" else int(high)
        a, b = min(a, b), max(a, b)
        chosen.update(u for u in uids if a <= u <= b)
    return chosen


class _Session:
    """One connection: not authenticated, authenticated, selected."""

    def __init__(self, srv: ScriptedImapServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.srv = srv
        self.reader = reader
        self.writer = writer
        self.tls_active = srv.tls_context is not None
        self.authed = srv.preauth
        self.selected: ImapFolder | None = None
        self.readonly = False
        self.reported = 0  # the message count this session was last told

    async def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.writer.write(data if data.endswith(b"\r\n") else data + b"\r\n")
        await self.writer.drain()

    def caps(self) -> str:
        return " ".join(self.srv.capability_list(tls_active=self.tls_active, authed=self.authed))

    async def readline(self) -> str | None:
        raw = await self.reader.readline()
        if not raw:
            return None
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        self.srv.commands.append(line)
        return line

    async def run(self) -> None:
        srv = self.srv
        if srv.greeting_line is not None:
            await self.send(srv.greeting_line)
            if "BYE" in srv.greeting_line.upper().split()[:2]:
                return
        else:
            code = f"[CAPABILITY {self.caps()}] " if srv.greeting_capability else ""
            await self.send(f"* {'PREAUTH' if srv.preauth else 'OK'} {code}scripted IMAP ready")
        while True:
            line = await self.readline()
            if line is None:
                return
            tag, _, rest = line.partition(" ")
            verb, _, arg = rest.partition(" ")
            verb = verb.upper()
            if verb == "UID":
                sub, _, arg = arg.partition(" ")
                verb = f"UID {sub.upper()}"
            if not tag or not verb:
                await self.send("* BAD Error in IMAP command: no tag or command")
                continue
            if verb in srv.stall:
                await self.reader.read()
                return
            override = srv.replies.get(verb)
            if isinstance(override, list) and override:
                await self.send(f"{tag} {override.pop(0)}")
                continue
            if isinstance(override, str):
                await self.send(f"{tag} {override}")
                continue
            if srv.long_line is not None and srv.long_line[0] == verb:
                await self.send(b"* OK " + b"x" * srv.long_line[1])
            handler = getattr(self, "do_" + verb.lower().replace(" ", "_"), None)
            if handler is None:
                await self.send(f"{tag} BAD Unknown command {verb}")
                continue
            if await handler(tag, arg) is False:
                return

    async def need(self, tag: str, *, selected: bool = False) -> bool:
        if not self.authed:
            await self.send(f"{tag} BAD Not logged in")
            return False
        if selected and self.selected is None:
            await self.send(f"{tag} BAD No mailbox selected")
            return False
        return True

    # ---------------------------------------------------------- any state

    async def do_capability(self, tag: str, arg: str) -> None:
        await self.send(f"* CAPABILITY {self.caps()}")
        await self.send(f"{tag} OK Capability completed.")

    async def do_noop(self, tag: str, arg: str) -> None:
        await self.tell_exists()
        await self.send(f"{tag} OK NOOP completed.")

    async def tell_exists(self) -> None:
        if self.selected is not None and len(self.selected.messages) != self.reported:
            self.reported = len(self.selected.messages)
            await self.send(f"* {self.reported} EXISTS")

    async def do_logout(self, tag: str, arg: str) -> bool:
        await self.send("* BYE Logging out")
        await self.send(f"{tag} OK Logout completed.")
        return False

    # ---------------------------------------------------- not authenticated

    async def do_starttls(self, tag: str, arg: str) -> None:
        ctx = self.srv.starttls_context
        if ctx is None or self.tls_active:
            await self.send(f"{tag} BAD TLS is already active or not offered")
            return
        self.writer.write(f"{tag} OK Begin TLS negotiation now.\r\n".encode() + self.srv.starttls_inject)
        await self.writer.drain()
        await self.writer.start_tls(ctx)
        self.tls_active = True

    async def do_login(self, tag: str, arg: str) -> None:
        args = arguments(arg)
        if self.authed or len(args) != 2:
            await self.send(f"{tag} BAD Invalid arguments")
            return
        if self.srv.logindisabled and not self.tls_active:
            await self.send(f"{tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed.")
            return
        await self.logged_in(tag, args[0] == self.srv.user and args[1] == self.srv.password)

    async def logged_in(self, tag: str, ok: bool) -> None:
        if not ok:
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
            return
        self.authed = True
        code = f"[CAPABILITY {self.caps()}] " if self.srv.login_capability else ""
        await self.send(f"{tag} OK {code}Logged in")

    async def do_authenticate(self, tag: str, arg: str) -> bool | None:
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if self.authed:
            await self.send(f"{tag} BAD Already logged in")
            return None
        if mech not in (*self.srv.sasl, *self.srv.unlisted_sasl):
            await self.send(f"{tag} NO Unsupported authentication mechanism.")
            return None
        if initial and not self.srv.sasl_ir:
            await self.send(f"{tag} BAD SASL-IR not supported")
            return None
        form = "initial" if initial else "continued"
        if not initial:
            await self.send("+ ")
            line = await self.readline()
            if line is None:
                return False
            if line == "*":
                await self.send(f"{tag} BAD Authentication aborted by client.")
                return None
            initial = line
        try:
            raw = base64.b64decode(initial, validate=True)
        except ValueError:
            await self.send(f"{tag} BAD Invalid base64 data in continued response")
            return None
        if mech != "PLAIN":
            return await self.oauth(tag, mech, form, raw)
        if self.srv.logindisabled and not self.tls_active:
            await self.send(f"{tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed.")
            return None
        parts = raw.split(b"\0")
        ok = len(parts) == 3 and parts[0] in (b"", parts[1]) and parts[1] == self.srv.user.encode() \
            and parts[2] == self.srv.password.encode()
        await self.logged_in(tag, ok)
        return None

    async def oauth(self, tag: str, mech: str, form: str, raw: bytes) -> bool | None:
        record = {"mechanism": mech, "form": form}
        fields = raw.decode("utf-8", errors="replace").split("\x01")
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
            await self.logged_in(tag, True)
            return None
        challenge = self.srv.oauth_challenge
        if challenge is not False:
            if challenge is True:
                error = {"status": "401", "schemes": "bearer", "scope": "https://mail.example/.default"} \
                    if mech == "XOAUTH2" else {"status": "invalid_token", "scope": "mail"}
                challenge = base64.b64encode(json.dumps(error, separators=(",", ":")).encode()).decode()
            await self.send(f"+ {challenge}")
            answer = await self.readline()
            if answer is None:
                return False
            record["answer"] = answer
        if self.srv.oauth_final is None:
            await self.reader.read()
            return False
        final = self.srv.oauth_final
        await self.send(final if final.startswith(("+", "*")) else f"{tag} {final}")
        return None

    # -------------------------------------------------------- authenticated

    async def do_list(self, tag: str, arg: str) -> None:
        if await self.need(tag):
            for name in self.srv.folders:
                await self.send(f'* LIST (\\HasNoChildren) "/" {quote(name)}')
            await self.send(f"{tag} OK List completed.")

    async def do_create(self, tag: str, arg: str) -> None:
        if not await self.need(tag):
            return
        name = arguments(arg)[0]
        if name in self.srv.folders:
            await self.send(f"{tag} NO [ALREADYEXISTS] Mailbox already exists")
            return
        self.srv.create(name)
        await self.send(f"{tag} OK Create completed.")

    async def do_select(self, tag: str, arg: str, *, readonly: bool = False) -> None:
        if not await self.need(tag):
            return
        name = arguments(arg)[0] if arg else ""
        folder = self.srv.folders.get(name)
        self.selected = None
        if folder is None:
            await self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist: {name}")
            return
        self.selected, self.readonly, self.reported = folder, readonly, len(folder.messages)
        await self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        await self.send(f"* {len(folder.messages)} EXISTS")
        await self.send("* 0 RECENT")
        await self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
        await self.send(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID")
        await self.send(f"{tag} OK [{'READ-ONLY' if readonly else 'READ-WRITE'}] Select completed.")

    async def do_examine(self, tag: str, arg: str) -> None:
        await self.do_select(tag, arg, readonly=True)

    async def do_idle(self, tag: str, arg: str) -> bool | None:
        if not await self.need(tag, selected=True):
            return None
        if not self.srv.idle:
            await self.send(f"{tag} BAD Unknown command IDLE")
            return None
        mode = self.srv.idle_mode
        if mode == "no-continue":
            await self.reader.read()
            return False
        await self.send("+ idling")
        if mode in ("end", "bye"):
            await asyncio.sleep(self.srv.idle_end_after)
            if mode == "bye":
                await self.send("* BYE Disconnected for inactivity.")
                return False
            await self.send(f"{tag} OK Idle terminated by the server.")
            return None
        assert self.selected is not None
        event = asyncio.Event()
        idlers = self.srv._idlers.setdefault(self.selected.name, set())
        idlers.add(event)
        line_task = asyncio.ensure_future(self.readline())
        try:
            while True:
                poke = asyncio.ensure_future(event.wait())
                await asyncio.wait({line_task, poke}, return_when=asyncio.FIRST_COMPLETED)
                poke.cancel()
                if event.is_set():
                    event.clear()
                    await self.tell_exists()
                if line_task.done():
                    break
        finally:
            idlers.discard(event)
            if not line_task.done():
                line_task.cancel()
        line = line_task.result()
        if line is None:
            return False
        if mode == "no-done":
            await self.reader.read()
            return False
        if line.upper() != "DONE":
            await self.send(f"{tag} BAD Expected DONE.")
            return None
        await self.send(f"{tag} OK Idle completed.")
        return None

    # ------------------------------------------------------------- selected

    def chosen(self, arg: str) -> tuple[list[ImapMessage], str]:
        assert self.selected is not None
        seqset, _, rest = arg.partition(" ")
        wanted = uid_set(seqset, self.selected.uids)
        return [m for m in self.selected.messages if m.uid in wanted], rest

    async def do_uid_fetch(self, tag: str, arg: str) -> bool | None:
        if not await self.need(tag, selected=True):
            return None
        assert self.selected is not None
        folder, srv = self.selected, self.srv
        messages, items = self.chosen(arg)
        items = items.upper()
        body = "BODY.PEEK[]" in items or "BODY[]" in items
        for message in messages:
            if message not in folder.messages:
                continue
            if body and message.uid in srv.expunge_during_fetch:
                srv.expunge_during_fetch.discard(message.uid)
                seq = folder.messages.index(message) + 1
                folder.messages.remove(message)
                self.reported -= 1
                await self.send(f"* {seq} EXPUNGE")
                continue
            if body and srv.fetch_refusal is not None and srv.fetch_refusal[0] == message.uid:
                await self.send(f"{tag} {srv.fetch_refusal[1]}")
                return None
            seq = folder.messages.index(message) + 1
            head = [f"UID {message.uid}"] if not (body and srv.uid_after_body) else []
            if "RFC822.SIZE" in items:
                head.append(f"RFC822.SIZE {len(message.data)}")
            if "FLAGS" in items:
                head.append(f"FLAGS ({' '.join(sorted(message.flags))})")
            if not body:
                await self.send(f"* {seq} FETCH ({' '.join(head)})")
                continue
            if "BODY[]" in items and "BODY.PEEK[]" not in items:
                message.flags.add("\\Seen")
            start = f"* {seq} FETCH ({' '.join([*head, ''])}BODY[] {{{len(message.data)}}}\r\n".encode()
            tail = (f" UID {message.uid})" if srv.uid_after_body else ")").encode() + b"\r\n"
            if srv.drop_fetch is not None and srv.drop_fetch[0] == message.uid:
                self.writer.write(start + message.data[:srv.drop_fetch[1]])
                await self.writer.drain()
                self.writer.transport.abort()
                return False
            extra = srv.literal_overrun[1] if srv.literal_overrun and srv.literal_overrun[0] == message.uid else b""
            self.writer.write(start + message.data + extra + tail)
            await self.writer.drain()
        await self.send(f"{tag} OK Fetch completed.")
        return None

    async def do_uid_store(self, tag: str, arg: str) -> None:
        if not await self.need(tag, selected=True):
            return
        messages, rest = self.chosen(arg)
        what, _, flag_list = rest.partition(" ")
        flags = set(flag_list.strip("()").split())
        what = what.upper()
        for message in messages:
            if what.startswith("+"):
                message.flags |= flags
            elif what.startswith("-"):
                message.flags -= flags
            else:
                message.flags = set(flags)
            if not what.endswith(".SILENT"):
                await self.send(f"* {self.seq(message)} FETCH (UID {message.uid} FLAGS "
                                f"({' '.join(sorted(message.flags))}))")
        await self.send(f"{tag} OK Store completed.")

    def seq(self, message: ImapMessage) -> int:
        assert self.selected is not None
        return self.selected.messages.index(message) + 1

    async def remove(self, messages: Iterable[ImapMessage]) -> None:
        """Expunge *messages* from the selected folder, telling the client each one's sequence number."""
        assert self.selected is not None
        for message in list(messages):
            seq = self.seq(message)
            self.selected.messages.remove(message)
            self.reported -= 1
            await self.send(f"* {seq} EXPUNGE")

    async def do_expunge(self, tag: str, arg: str) -> None:
        if await self.need(tag, selected=True):
            assert self.selected is not None
            await self.remove(m for m in self.selected.messages if "\\Deleted" in m.flags)
            await self.send(f"{tag} OK Expunge completed.")

    async def do_uid_expunge(self, tag: str, arg: str) -> None:
        if not self.srv.uidplus:
            await self.send(f"{tag} BAD Unknown command UID EXPUNGE")
        elif await self.need(tag, selected=True):
            messages, _ = self.chosen(arg)
            await self.remove(m for m in messages if "\\Deleted" in m.flags)
            await self.send(f"{tag} OK Expunge completed.")

    async def do_uid_search(self, tag: str, arg: str) -> None:
        if not await self.need(tag, selected=True):
            return
        assert self.selected is not None
        key = arg.strip().upper()
        found = [m.uid for m in self.selected.messages
                 if key == "ALL" or (key == "DELETED") == ("\\Deleted" in m.flags)]
        await self.send(" ".join(["* SEARCH", *map(str, found)]))
        await self.send(f"{tag} OK Search completed.")

    async def do_uid_copy(self, tag: str, arg: str, *, move: bool = False) -> None:
        if not await self.need(tag, selected=True):
            return
        if move and not self.srv.move:
            await self.send(f"{tag} BAD Unknown command UID MOVE")
            return
        assert self.selected is not None
        messages, rest = self.chosen(arg)
        target = self.srv.folders.get(arguments(rest)[0] if rest else "")
        if target is None:
            await self.send(f"{tag} NO [TRYCREATE] Mailbox doesn't exist")
            return
        copies = [target.add(ImapMessage(m.data, m.flags - {"\\Deleted"})) for m in messages]
        code = ""
        if self.srv.uidplus and messages:
            source = ",".join(str(m.uid) for m in messages)
            code = f"[COPYUID {target.uidvalidity} {source} {','.join(str(c.uid) for c in copies)}] "
        if move:
            await self.send(f"* OK {code}Moved")
            await self.remove(messages)
            await self.send(f"{tag} OK Move completed.")
        else:
            await self.send(f"{tag} OK {code}Copy completed.")

    async def do_uid_move(self, tag: str, arg: str) -> None:
        await self.do_uid_copy(tag, arg, move=True)
