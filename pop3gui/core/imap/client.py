"""A small, strict asyncio IMAP4rev1 client (RFC 3501) for one job: downloading folders safely.

Held to the POP3 client's standards: every read has a timeout, every line and
every literal a bound, a broken stream closes the connection, secrets never
travel in plaintext unless the account says so and never reach the
transcript.  It speaks what a mail source needs: CAPABILITY, STARTTLS, the
logins, LIST, SELECT, UID FETCH (sizes, then bodies with BODY.PEEK[] in
pipelined batches), UID STORE, UID EXPUNGE (UIDPLUS, RFC 4315), MOVE
(RFC 6851), COPY, CREATE, IDLE (RFC 2177) and LOGOUT.  IMAP4rev2 servers
(RFC 9051) answer these the same way.

The conversation itself (connecting, STARTTLS, tagged commands, logging in
and out) is :class:`~pop3gui.core.imap.session.ImapSession`, which this
client extends; reading responses is in :mod:`.parse`, the byte stream in
:mod:`.stream`, logging in in :mod:`.login`.
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
from typing import Any

from pop3gui.core.errors import FolderMissingError, MailboxCommandError, MailboxProtocolError
from pop3gui.core.imap.login import login_refused
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
from pop3gui.core.imap.session import SECURITY_MODES, ImapSession
from pop3gui.core.imap.stream import DataSink


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


class ImapClient(ImapSession):
    """What a mail source asks of an IMAP server; ``async with ImapClient(...) as imap:`` logs out at the end."""

    def __init__(self, host: str, port: int, *, security: str, verify_tls: bool = True, timeout: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None, max_line: int = 64 * 1024) -> None:
        super().__init__(host, port, security=security, verify_tls=verify_tls, timeout=timeout,
                         ssl_context=ssl_context, max_line=max_line)
        self.selected: FolderState | None = None
        self.marked_deleted: set[int] = set()  # UIDs the last listing (sizes) found marked \\Deleted
        self.oversized: dict[int, int] = {}  # UID -> size of what the last fetch_many read past (over max_body)

    async def connect(self) -> None:
        self.selected = None
        await super().connect()

    async def close(self) -> None:
        """Drop the connection without a word (nothing is committed that was not already)."""
        self.selected = None
        await super().close()

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




def _parts(uids: list[int], size: int = 500) -> list[list[int]]:
    """UIDs in groups, so no command line outgrows what servers take (scattered UIDs make long sets)."""
    return [uids[i:i + size] for i in range(0, len(uids), size)]


__all__ = ["FETCH_BATCH", "IDLE_RENEW_S", "SECURITY_MODES", "Folder", "FolderState", "ImapClient",
           "login_refused"]
