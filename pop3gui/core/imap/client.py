"""A small, strict asyncio IMAP4rev1 client (RFC 3501) for one job: downloading folders safely.

Held to the POP3 client's standards: every read has a timeout, every line and
every literal a bound, a broken stream closes the connection, secrets never
travel in plaintext unless the account says so and never reach the
transcript.  It speaks what a mail source needs: CAPABILITY, STARTTLS, the
logins, LIST, SELECT, UID FETCH (sizes, then bodies with BODY.PEEK[] in
pipelined batches), UID STORE, UID EXPUNGE (UIDPLUS, RFC 4315), MOVE
(RFC 6851), COPY, CREATE, IDLE (RFC 2177) and LOGOUT.  IMAP4rev2 servers
(RFC 9051) answer these the same way.

Reading responses is in :mod:`.parse`, the byte stream in :mod:`.stream`,
logging in in :mod:`.login`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import ssl
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Self

from pop3gui.core.connect import IMAP, open_connection, tls_context, tls_error
from pop3gui.core.errors import (
    ConfigError,
    FolderMissingError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTlsError,
)
from pop3gui.core.imap.login import login_refused, oauth_login, password_login
from pop3gui.core.imap.parse import (
    LITERAL_AT_END,
    Response,
    decode_folder,
    encode_folder,
    fetch_items,
    number_of,
    protocol_error,
    quoted,
    sequence_set,
)
from pop3gui.core.imap.stream import DataSink, ImapStream

SECURITY_MODES = ("tls", "starttls", "none")

#: UIDs per UID FETCH command; two commands are in flight so the server never waits for us.
FETCH_BATCH = 50

#: An IDLE is ended and issued again before this many seconds (RFC 2177: servers may drop it after 30 min).
IDLE_RENEW_S = 25 * 60.0

#: A body literal read past (to a discarding sink) may be of any size: nothing of it is kept.
_UNBOUNDED = 1 << 62

_BODY_AT_END = re.compile(rb"BODY\[\]\s*~?\{\d+\+?\}\r?\n$", re.IGNORECASE)
_FETCH_HEAD = re.compile(rb"^\* (\d+) FETCH \(", re.IGNORECASE)
_UID_ITEM = re.compile(rb"[( ]UID (\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Folder:
    """A folder as LIST names it: its (decoded) name, hierarchy delimiter and flags."""

    name: str
    delimiter: str
    flags: tuple[str, ...]

    @property
    def selectable(self) -> bool:
        return not any(f.upper() in ("\\NOSELECT", "\\NONEXISTENT") for f in self.flags)


@dataclass(frozen=True)
class FolderState:
    """What SELECT said about a folder: its UIDVALIDITY, message count and next UID."""

    name: str
    uidvalidity: int
    exists: int
    uidnext: int = 0


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


class ImapClient:
    """One IMAP session; ``async with ImapClient(...) as imap:`` logs out when the block ends normally."""

    def __init__(self, host: str, port: int, *, security: str, verify_tls: bool = True, timeout: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None, max_line: int = 64 * 1024) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(f"unknown IMAP security {security!r}", key="security",
                              cause="security must be one of: tls, starttls, none.",
                              fix='Use "tls" for port 993, "starttls" for port 143, or "none" only on a network '
                              "you trust.")
        self.host = host
        self.port = port
        self.security = security
        self.verify_tls = verify_tls
        self._ssl_context = ssl_context
        self.greeting = ""
        self.capabilities: set[str] = set()
        self._stream = ImapStream(f"{host}:{port}", timeout=timeout, max_line=max_line)
        self.transcript: collections.deque[str] = self._stream.transcript
        self._tags = 0
        self.selected: FolderState | None = None
        self._exists = 0
        self._uid_of_seq: list[int] = []  # the selected folder's UIDs by sequence number - 1, as last listed
        self.marked_deleted: set[int] = set()  # UIDs the last listing (sizes) found marked \\Deleted
        self.oversized: dict[int, int] = {}  # UID -> size of what the last fetch_many read past (over max_body)
        self._logged_in = False

    # ------------------------------------------------------------------ basics

    @property
    def where(self) -> str:
        return self._stream.where

    @property
    def timeout(self) -> float:
        return self._stream.timeout

    @property
    def encrypted(self) -> bool:
        return self._stream.encrypted

    @property
    def connected(self) -> bool:
        return self._stream.connected

    @property
    def has_uidplus(self) -> bool:
        """UID EXPUNGE: UIDPLUS (RFC 4315), part of IMAP4rev2 (RFC 9051) itself."""
        return "UIDPLUS" in self.capabilities or "IMAP4REV2" in self.capabilities

    @property
    def has_move(self) -> bool:
        """UID MOVE: MOVE (RFC 6851), part of IMAP4rev2 itself."""
        return "MOVE" in self.capabilities or "IMAP4REV2" in self.capabilities

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if exc_type is None:
            await self.logout()
        else:
            await self.close()

    async def close(self) -> None:
        """Drop the connection without a word (nothing is committed that was not already)."""
        self.selected = None
        await self._stream.close()

    # ------------------------------------------------------------------ connecting

    async def connect(self) -> None:
        """TCP (and TLS), the greeting, CAPABILITY, STARTTLS if asked to."""
        tls = self._tls_context() if self.security == "tls" else None
        reader, writer = await open_connection(self.host, self.port, tls=tls, timeout=self.timeout,
                                               max_line=self._stream.max_line, service=IMAP)
        stream = self._stream
        stream.attach(reader, writer)
        self._logged_in = False
        self.selected = None
        try:
            greeting = await stream.read_response("waiting for the greeting")
            if greeting.tag != "*" or greeting.kind not in ("OK", "PREAUTH", "BYE"):
                await stream.close()
                raise protocol_error(self.where, "a greeting that is not * OK", greeting.text.encode())
            if greeting.kind == "BYE":
                await stream.close()
                raise MailboxConnectionError(
                    f"The IMAP server {self.where} refused the connection: {greeting.text}",
                    cause="The server is busy, shutting down, or does not accept connections from here.",
                    fix="Nothing to do if it happens once: the next cycle retries. If it lasts, ask the provider.")
            self.greeting = greeting.text
            self._logged_in = greeting.kind == "PREAUTH"
            self._take_capabilities(greeting)
            if not self.capabilities:
                await self.capability()
            if self.security == "starttls":
                await self._starttls()
        except BaseException:
            await stream.close()
            raise

    async def _starttls(self) -> None:
        stream = self._stream
        if "STARTTLS" not in self.capabilities:
            raise MailboxTlsError(
                f"The IMAP server {self.where} does not offer STARTTLS",
                cause="The account is set to security = starttls, but the server did not announce STARTTLS, so "
                "the password would travel unencrypted.",
                fix='Use security = "tls" (usually port 993) if the provider offers it; never fall back to '
                "plaintext on an untrusted network.")
        response = await self._simple("STARTTLS")
        if response.kind != "OK":
            raise MailboxTlsError(f"The IMAP server {self.where} refused STARTTLS: {response.text}",
                                  cause="The server would not start TLS, so the password would travel "
                                  "unencrypted.", fix='Use security = "tls" (usually port 993).')
        if stream.unread_bytes():  # sent before TLS, would be read as if protected by it
            raise MailboxTlsError(f"The IMAP server {self.where} sent unexpected data right after STARTTLS",
                                  cause="Data arrived before TLS started; someone on the network may be "
                                  "tampering with the connection.", fix='Use security = "tls" (port 993), or '
                                  "check the network.")
        writer = stream.live_writer()
        try:
            await asyncio.wait_for(writer.start_tls(self._tls_context(), server_hostname=self.host,
                                                    ssl_handshake_timeout=self.timeout), self.timeout)
        except ssl.SSLError as exc:
            raise tls_error(exc, self.host, self.port, IMAP) from exc
        except TimeoutError as exc:
            raise MailboxTlsError(f"The TLS handshake with {self.where} timed out",
                                  cause="The server accepted STARTTLS but did not complete TLS.",
                                  fix="Retry later; if it persists, contact the provider.") from exc
        except OSError as exc:
            raise stream.dropped(exc) from exc
        stream.transcript.append("-- TLS started")
        self.capabilities = set()
        await self.capability()  # RFC 3501: capabilities learnt before TLS are forgotten

    def _tls_context(self) -> ssl.SSLContext:
        return tls_context(self._ssl_context, verify=self.verify_tls)

    # ------------------------------------------------------------------ commands

    async def _send(self, line: str, redacted: str | None = None) -> str:
        """Send a tagged command line; its tag."""
        self._tags += 1
        tag = f"P{self._tags:04d}"
        await self._stream.send(f"{tag} {line}", redacted=None if redacted is None else f"{tag} {redacted}")
        return tag

    async def _finish(self, tag: str, what: str, on_data: Callable[[Response], None] | None = None) -> Response:
        """Read until the tagged response of *tag*, handing untagged data to *on_data*."""
        while True:
            response = await self._stream.read_response(f"waiting for the reply to {what}")
            if response.tag == tag:
                return response
            if response.tag == "*":
                self._note(response)
                if on_data is not None:
                    on_data(response)
                continue
            await self._stream.close()
            raise protocol_error(self.where, f"an unexpected response to {what}", response.text.encode())

    async def _simple(self, line: str, what: str = "", on_data: Callable[[Response], None] | None = None) -> Response:
        tag = await self._send(line)
        return await self._finish(tag, what or line.split(" ", 1)[0], on_data)

    async def _ok(self, line: str, what: str = "", on_data: Callable[[Response], None] | None = None) -> Response:
        """A command that must succeed; NO or BAD becomes MailboxCommandError with the server's words."""
        name = what or line.split(" ", 1)[0]
        response = await self._simple(line, name, on_data)
        if response.kind != "OK":
            raise self.refused(name, response)
        return response

    def refused(self, command: str, response: Response) -> MailboxCommandError:
        said = f"{response.kind} " + (f"[{response.code}] " if response.code else "") + response.text
        if response.code == "INUSE":  # RFC 5530: another session holds the folder
            return MailboxInUseError(
                f"The IMAP server {self.where} says the folder is in use: {command}: {said}",
                cause="Another program or session holds the folder, or an earlier session has not ended yet.",
                fix="Nothing to do if it happens once; the next cycle retries. Otherwise close the other program.",
                reply=said, resp_code=response.code)
        return MailboxCommandError(
            f"The IMAP server {self.where} refused {command}: {said}",
            cause="The server answered NO (it cannot do it now) or BAD (it did not understand the command).",
            fix="Nothing is lost: the messages stay on the server. If it keeps happening, check the folder "
            "settings and the server with another mail client.",
            reply=said, resp_code=response.code)

    def _note(self, response: Response) -> None:
        """Keep track of what the server says on the side: capabilities, message counts, BYE."""
        if response.kind == "CAPABILITY":
            self.capabilities = {str(v).upper() for v in response.data if isinstance(v, str)}
        elif response.kind == "EXISTS" and response.number is not None:
            self._exists = response.number
        elif response.kind == "EXPUNGE" and response.number is not None:
            self._exists = max(0, self._exists - 1)
            if 0 < response.number <= len(self._uid_of_seq):
                del self._uid_of_seq[response.number - 1]
        elif response.is_status:
            self._take_capabilities(response)

    def _take_capabilities(self, response: Response) -> None:
        if response.code == "CAPABILITY":
            self.capabilities = {c.upper() for c in response.code_args.split()}

    async def capability(self) -> set[str]:
        await self._ok("CAPABILITY")
        return self.capabilities

    # ------------------------------------------------------------------ logging in

    async def login(self, user: str, password: str) -> None:
        if self._logged_in:
            return
        response = await password_login(self._stream, self._send, self._finish, capabilities=self.capabilities,
                                        security=self.security, user=user, password=password)
        await self._after_login(response)

    async def login_oauth(self, user: str, token: str, *, mechanism: str = "xoauth2") -> None:
        if self._logged_in:
            return
        response = await oauth_login(self._stream, self._send, self._finish, capabilities=self.capabilities,
                                     security=self.security, host=self.host, port=self.port, user=user, token=token,
                                     mechanism=mechanism)
        await self._after_login(response)

    async def _after_login(self, response: Response) -> None:
        self._logged_in = True
        if response.code == "CAPABILITY":
            self._take_capabilities(response)
        else:
            await self.capability()  # a server may announce more once logged in

    # ------------------------------------------------------------------ folders

    async def list_folders(self) -> list[Folder]:
        """Every folder the server lists (LIST "" "*"), names decoded."""
        folders: list[Folder] = []

        def take(response: Response) -> None:
            if response.kind != "LIST" or len(response.data) < 3:
                return
            flags, delimiter, name = response.data[0], response.data[1], response.data[2]
            if not isinstance(flags, list) or not isinstance(name, str | bytes):
                raise protocol_error(self.where, "a LIST line without flags and a name")
            text = name.decode("utf-8", errors="replace") if isinstance(name, bytes) else name
            folders.append(Folder(decode_folder(text), delimiter if isinstance(delimiter, str) else "",
                                  tuple(str(f) for f in flags if isinstance(f, str))))

        await self._ok('LIST "" "*"', "LIST", take)
        return folders

    async def select(self, folder: str, *, readonly: bool = False) -> FolderState:
        """SELECT a folder (read-write: \\Deleted and MOVE need it), or EXAMINE it; its UIDVALIDITY and size."""
        state: dict[str, int] = {}
        self.selected = None

        def take(response: Response) -> None:
            if response.kind == "EXISTS" and response.number is not None:
                state["exists"] = response.number
            elif response.code == "UIDVALIDITY":
                state["uidvalidity"] = number_of(response.code_args.strip(), self.where, "UIDVALIDITY")
            elif response.code == "UIDNEXT":
                state["uidnext"] = number_of(response.code_args.strip(), self.where, "UIDNEXT")

        verb = "EXAMINE" if readonly else "SELECT"
        response = await self._simple(f"{verb} {quoted(encode_folder(folder))}", verb, take)
        if response.kind == "NO" and response.code in ("NONEXISTENT", ""):
            said = f"NO {response.text}" if not response.code else f"NO [{response.code}] {response.text}"
            raise FolderMissingError(
                f"The IMAP server {self.where} has no folder {folder!r}: {said}",
                cause="The account fetches from a folder the server does not have (or that this user may not "
                "open); names are case-sensitive except INBOX, and sub-folders use the server's separator.",
                fix="Open the account, press Test, and pick the folder from the server's list.",
                reply=said, resp_code=response.code)
        if response.kind != "OK":
            raise self.refused(f"{verb} {folder}", response)
        if "uidvalidity" not in state:
            raise MailboxProtocolError(
                f"The IMAP server {self.where} did not give folder {folder!r} a UIDVALIDITY",
                cause="Without UIDVALIDITY a message cannot be known again next time (RFC 3501 requires it).",
                fix="Use POP3 for this mailbox, or report it to the provider.")
        self._exists = state.get("exists", 0)
        self._uid_of_seq = []
        self.selected = FolderState(folder, state["uidvalidity"], self._exists, state.get("uidnext", 0))
        return self.selected

    async def create(self, folder: str) -> None:
        """CREATE a folder; one that already exists is fine."""
        response = await self._simple(f"CREATE {quoted(encode_folder(folder))}", "CREATE")
        if response.kind != "OK" and response.code != "ALREADYEXISTS":
            raise self.refused(f"CREATE {folder}", response)

    # ------------------------------------------------------------------ messages

    async def sizes(self) -> dict[int, int]:
        """UID -> RFC822.SIZE of every message in the selected folder.

        The UIDs of those marked ``\\Deleted`` (by us, or by another program
        that may still undo it) are left in :attr:`marked_deleted`.
        """
        self.marked_deleted = set()
        if not self._exists:
            return {}
        sizes: dict[int, int] = {}
        by_seq: dict[int, int] = {}

        def take(response: Response) -> None:
            if response.kind != "FETCH":
                return
            items = fetch_items(response, self.where)
            if "RFC822.SIZE" not in items:
                return  # a flag change another session made, told on the side
            if "UID" not in items:  # a listing with holes would make the journal forget messages
                raise protocol_error(self.where, "a message listed without its UID")
            uid = number_of(items["UID"], self.where, "UID")
            sizes[uid] = number_of(items["RFC822.SIZE"], self.where, "RFC822.SIZE")
            flags = items.get("FLAGS")
            if isinstance(flags, list) and any(isinstance(f, str) and f.upper() == "\\DELETED" for f in flags):
                self.marked_deleted.add(uid)
            if response.number:
                by_seq[response.number] = uid

        await self._ok("UID FETCH 1:* (UID RFC822.SIZE FLAGS)", "UID FETCH", take)
        self._uid_of_seq = [by_seq.get(n, 0) for n in range(1, max(by_seq, default=0) + 1)]
        return sizes

    async def fetch_many(self, uids: list[int], open_sink: Callable[[int], AbstractContextManager[DataSink]], *,
                         max_body: int, batch: int = FETCH_BATCH) -> AsyncGenerator[int, None]:
        """Download messages by UID (BODY.PEEK[]: the \\Seen flag stays as it was); yields each UID once its
        body is whole in its sink.

        Two UID FETCH commands of *batch* UIDs are in flight at a time.  A UID
        the server no longer has is simply not yielded, nor is one whose data
        turns out larger than *max_body* (its RFC822.SIZE was an estimate): it
        is read past and left in :attr:`oversized`.  Leaving early with
        commands still on the wire drops the connection rather than read (and
        throw away) up to two batches of messages.
        """
        self.oversized = {}
        chunks = [sorted(uids)[i:i + batch] for i in range(0, len(uids), batch)]
        in_flight: collections.deque[str] = collections.deque()
        wanted = set(uids)
        next_chunk = 0
        try:
            while next_chunk < len(chunks) or in_flight:
                while next_chunk < len(chunks) and len(in_flight) < 2:
                    in_flight.append(await self._send(f"UID FETCH {sequence_set(chunks[next_chunk])} "
                                                      "(UID BODY.PEEK[])"))
                    next_chunk += 1
                while True:
                    opened: list[tuple[int, AbstractContextManager[DataSink]]] = []

                    def body_sink(text: bytes) -> DataSink:
                        uid = self._body_uid(text)
                        if uid is None or uid not in wanted or opened:
                            return _Discard()
                        announced = LITERAL_AT_END.search(text)
                        if announced is not None and int(announced.group(1)) > max_body:
                            self.oversized[uid] = int(announced.group(1))
                            wanted.discard(uid)
                            return _Discard()
                        cm = open_sink(uid)
                        sink = cm.__enter__()
                        opened.append((uid, cm))
                        return sink

                    try:
                        response = await self._stream.read_response("downloading messages", body_sink=body_sink,
                                                                     max_body=_UNBOUNDED)
                    except BaseException as exc:
                        for _uid, cm in opened:
                            cm.__exit__(type(exc), exc, exc.__traceback__)
                        raise
                    if response.tag == "*" and response.kind == "FETCH" and opened:
                        try:
                            items = fetch_items(response, self.where)
                            listed = items.get("UID")
                            if listed is not None and number_of(listed, self.where, "UID") != opened[0][0]:
                                raise protocol_error(self.where, "a FETCH whose UID changed after its body")
                        except BaseException as exc:
                            opened[0][1].__exit__(type(exc), exc, exc.__traceback__)
                            await self._stream.close()
                            raise
                        opened[0][1].__exit__(None, None, None)
                        wanted.discard(opened[0][0])
                        yield opened[0][0]
                        continue
                    for _uid, cm in opened:
                        cm.__exit__(None, None, None)
                    if response.tag in in_flight:  # pipelined commands may complete in any order (RFC 3501, 5.5)
                        in_flight.remove(response.tag)
                        if response.kind != "OK":
                            raise self.refused("UID FETCH", response)
                        break
                    if response.tag == "*":
                        self._note(response)
                        continue
                    await self._stream.close()
                    raise protocol_error(self.where, "a response with a tag no command had", response.text.encode())
        finally:
            if in_flight:
                await self._stream.close()

    def _body_uid(self, text: bytes) -> int | None:
        """The UID of a FETCH response whose text so far ends with its body literal's announcement.

        Most servers put UID before the body; one that puts it after is known
        by the message's sequence number (and checked against the UID once
        the response is whole).
        """
        head = _FETCH_HEAD.match(text)
        if head is None or not _BODY_AT_END.search(text) or len(head.group(1)) > 10:
            return None
        match = _UID_ITEM.search(text)
        if match is not None and len(match.group(1)) <= 10:
            return int(match.group(1))
        seq = int(head.group(1))
        return self._uid_of_seq[seq - 1] if 0 < seq <= len(self._uid_of_seq) else None

    async def flag_deleted(self, uids: Iterable[int]) -> None:
        """UID STORE +FLAGS.SILENT (\\Deleted): marked, not yet removed."""
        for part in _parts(sorted(uids)):
            await self._ok(f"UID STORE {sequence_set(part)} +FLAGS.SILENT (\\Deleted)", "UID STORE")

    async def expunge(self, uids: Iterable[int]) -> bool:
        """Remove *uids* (already flagged \\Deleted) for good; False when that would remove others' messages too.

        With UIDPLUS, UID EXPUNGE removes exactly these.  Without it, EXPUNGE
        removes every \\Deleted message of the folder, so it is sent only when
        every such message is one of ours.
        """
        ordered = sorted(uids)
        if not ordered:
            return True
        if self.has_uidplus:
            for part in _parts(ordered):
                await self._ok(f"UID EXPUNGE {sequence_set(part)}", "UID EXPUNGE")
            return True
        flagged: set[int] = set()
        answered = False

        def take(response: Response) -> None:
            nonlocal answered
            if response.kind == "SEARCH":
                answered = True
                flagged.update(number_of(v, self.where, "UID") for v in response.data)

        await self._ok("UID SEARCH DELETED", "UID SEARCH", take)
        if not answered or not flagged <= set(ordered):  # not knowing which are marked is not "none"
            return False
        await self._ok("EXPUNGE")
        return True

    async def transfer(self, uids: Iterable[int], folder: str, *, move: bool) -> None:
        """UID MOVE (RFC 6851) or UID COPY messages to *folder*, creating it when the server says it is missing.

        MOVE is atomic on the server; after a COPY the originals are still
        here, for the caller to flag and expunge like deleted messages.
        """
        ordered = sorted(uids)
        if not ordered:
            return
        command = "UID MOVE" if move else "UID COPY"
        for part in _parts(ordered):
            line = f"{command} {sequence_set(part)} {quoted(encode_folder(folder))}"
            response = await self._simple(line, command)
            if response.kind == "NO" and response.code == "TRYCREATE":
                await self.create(folder)
                response = await self._simple(line, command)
            if response.kind != "OK":
                raise self.refused(f"{command} to {folder}", response)

    # ------------------------------------------------------------------ push

    async def idle(self, *, stop: asyncio.Event, wait: float = IDLE_RENEW_S) -> bool:
        """IDLE on the selected folder until new mail, *stop*, or *wait* seconds; True when mail arrived.

        The server may drop an IDLE after 30 minutes, so callers loop with
        *wait* under that.  DONE ends it either way and its OK is read, so the
        connection is ready for the next command.
        """
        if not self.has_idle:
            raise MailboxCommandError(f"The IMAP server {self.where} does not offer IDLE",
                                      cause="Without IDLE the server cannot tell us about new mail.",
                                      fix="Nothing to do: the account is polled on the schedule instead.")
        tag = await self._send("IDLE")
        first = await self._stream.read_response("starting IDLE")
        while first.tag == "*":
            self._note(first)
            first = await self._stream.read_response("starting IDLE")
        if first.tag == tag:
            raise self.refused("IDLE", first)
        if first.tag != "+":
            await self._stream.close()
            raise protocol_error(self.where, "an unexpected response to IDLE", first.text.encode())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        arrived = False
        read: asyncio.Future[Response] | None = None
        try:
            while not stop.is_set():
                if read is None:
                    read = asyncio.ensure_future(self._stream.read_response("idling", first_timeout=None))
                stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
                waiting: set[asyncio.Future[Any]] = {read, stopper}
                try:
                    done, _ = await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()),
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
                if read not in done:
                    break
                response, read = read.result(), None
                if response.tag == tag:  # the server ended the IDLE itself
                    return arrived
                known = self._exists
                self._note(response)
                if response.kind == "EXISTS" and (response.number or 0) > known:  # more than before: new mail
                    arrived = True
                    break
            await self._stream.send("DONE")
            while True:
                if read is None:
                    response = await self._stream.read_response("ending IDLE")
                else:  # a read started without a time limit: DONE's answer is bounded like any other
                    await asyncio.wait({read}, timeout=self.timeout)
                    if not read.done():
                        raise await self._stream.timeout_error("ending IDLE")
                    response = read.result()
                read = None
                if response.tag == tag:
                    break
                known = self._exists
                self._note(response)
                if response.kind == "EXISTS" and (response.number or 0) > known:
                    arrived = True
        except BaseException:
            if read is not None:
                read.cancel()
                with contextlib.suppress(BaseException):
                    await read
            await self.close()  # an IDLE cut short leaves the conversation out of step
            raise
        return arrived

    async def noop(self) -> None:
        await self._ok("NOOP")

    async def logout(self) -> None:
        """LOGOUT politely; a server that is already gone is not an error."""
        if not self._stream.connected:
            return
        try:
            await self._simple("LOGOUT")
        except MailboxError:
            pass
        finally:
            await self.close()




def _parts(uids: list[int], size: int = 500) -> list[list[int]]:
    """UIDs in groups, so no command line outgrows what servers take (scattered UIDs make long sets)."""
    return [uids[i:i + size] for i in range(0, len(uids), size)]


__all__ = ["FETCH_BATCH", "IDLE_RENEW_S", "Folder", "FolderState", "ImapClient", "login_refused"]
