"""The demo IMAP server's commands on folders and messages: the session once logged in.

:class:`Session` is a :class:`~pop3gui.demo.imap_connection.Connection` with
the commands of the authenticated and selected states - SELECT, EXAMINE,
CREATE, DELETE, (UN)SUBSCRIBE, LIST, LSUB, STATUS, APPEND, IDLE; CLOSE,
UNSELECT, EXPUNGE, FETCH, STORE, SEARCH, COPY, MOVE - each reading its
arguments, changing the mailboxes and answering.  Kept apart from the
connection so that what a command does reads without how commands arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime
from typing import Any

from pop3gui.core.imap.parse import decode_folder, encode_folder
from pop3gui.demo.imap_connection import Connection, Host
from pop3gui.demo.imap_search import SearchKeys
from pop3gui.demo.imap_store import DELIMITER, Folder, Message, folder_name, list_pattern
from pop3gui.demo.imap_wire import (
    SYSTEM_FLAGS, Args, Bad, FetchItem, Gone, No, imap_date, parse_date, parse_fetch_items, parse_flags, quote,
    uid_set,
)


class Session(Connection):
    """One client's session: a connection with the commands on folders and messages."""

    def __init__(self, server: Host, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 encrypted: bool) -> None:
        super().__init__(server, reader, writer, encrypted=encrypted)
        self.handlers.update({
            "SELECT": self.select, "EXAMINE": self.examine, "CREATE": self.create, "DELETE": self.delete,
            "SUBSCRIBE": self.subscribe, "UNSUBSCRIBE": self.unsubscribe, "LIST": self.list_folders,
            "LSUB": self.lsub, "STATUS": self.status, "APPEND": self.append, "IDLE": self.idle,
            "CLOSE": self.close, "UNSELECT": self.unselect, "EXPUNGE": self.expunge, "SEARCH": self.search,
            "FETCH": self.fetch, "STORE": self.store, "COPY": self.copy, "MOVE": self.move,
        })

    # --- folders -----------------------------------------------------------------------------

    def find(self, raw: str) -> Folder | None:
        assert self.box is not None
        return self.box.folders.get(folder_name(raw))

    def deselect(self) -> None:
        self.folder, self.view, self.recent, self.readonly = None, [], set(), False

    async def select(self, args: Args, uid: bool) -> str:
        return await self._select(args, readonly=False)

    async def examine(self, args: Args, uid: bool) -> str:
        return await self._select(args, readonly=True)

    async def _select(self, args: Args, *, readonly: bool) -> str:
        raw = args.string()
        args.end()
        self.deselect()  # a failed SELECT leaves no folder selected
        folder = self.find(raw)
        if folder is None:
            raise No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
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

    async def create(self, args: Args, uid: bool) -> str:
        name = folder_name(args.string()).rstrip(DELIMITER)
        args.end()
        assert self.box is not None
        if name in self.box.folders:
            raise No("ALREADYEXISTS", f"{name!r} exists already")
        levels = name.split(DELIMITER)
        if not name or "" in levels or any(c in name for c in "*%") or any(not c.isprintable() for c in name):
            raise No("CANNOT", f"{name!r} is not a valid folder name")
        for depth in range(1, len(levels) + 1):
            path = DELIMITER.join(levels[:depth])
            if path not in self.box.folders:
                self.box.folders[path] = self.server.new_folder(path)
        return "CREATE completed"

    async def delete(self, args: Args, uid: bool) -> str:
        name = folder_name(args.string())
        args.end()
        assert self.box is not None
        folder = self.box.folders.get(name)
        if folder is None:
            raise No("NONEXISTENT", f"no folder {name!r}")
        if name == "INBOX" or any(other.startswith(name + DELIMITER) for other in self.box.folders):
            raise No("CANNOT", "INBOX and folders with sub-folders cannot be deleted")
        if folder is self.folder:
            self.deselect()
        del self.box.folders[name]
        folder.alive = False
        self.server.changed(folder)
        return "DELETE completed"

    async def subscribe(self, args: Args, uid: bool) -> str:
        return self._subscribe(args, True)

    async def unsubscribe(self, args: Args, uid: bool) -> str:
        return self._subscribe(args, False)

    def _subscribe(self, args: Args, on: bool) -> str:
        raw = args.string()
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
        folder.subscribed = on
        return "done"

    async def list_folders(self, args: Args, uid: bool) -> str:
        return self._list(args, "LIST")

    async def lsub(self, args: Args, uid: bool) -> str:
        return self._list(args, "LSUB")

    def _list(self, args: Args, verb: str) -> str:
        reference, pattern = decode_folder(args.string()), decode_folder(args.string())
        args.end()
        assert self.box is not None
        if not pattern:  # the hierarchy delimiter and root
            self.send(f'* {verb} (\\Noselect) "{DELIMITER}" ""')
            return f"{verb} completed"
        matcher = list_pattern(reference + pattern)
        names = sorted(self.box.folders, key=lambda n: (n != "INBOX", n))
        for name in names:
            folder = self.box.folders[name]
            if not matcher.fullmatch(name) or (verb == "LSUB" and not folder.subscribed):
                continue
            children = any(other.startswith(name + DELIMITER) for other in names)
            flags = "\\HasChildren" if children else "\\HasNoChildren"
            self.send(f'* {verb} ({flags}) "{DELIMITER}" {quote(encode_folder(name))}')
        return f"{verb} completed"

    async def status(self, args: Args, uid: bool) -> str:
        raw = args.string()
        items = args.token()
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise No("NONEXISTENT", f"no folder {folder_name(raw)!r}")
        if not isinstance(items, list) or not items:
            raise Bad("STATUS wants a list of items")
        values = {"MESSAGES": len(folder.messages), "RECENT": len(folder.recent), "UIDNEXT": folder.uidnext,
                  "UIDVALIDITY": folder.uidvalidity,
                  "UNSEEN": sum(1 for m in folder.messages if "\\Seen" not in m.flags)}
        out = []
        for item in items:
            if not isinstance(item, str) or item.upper() not in values:
                raise Bad(f"unknown STATUS item {item!r}")
            out.append(f"{item.upper()} {values[item.upper()]}")
        self.send(f"* STATUS {quote(encode_folder(folder.name))} ({' '.join(out)})")
        return "STATUS completed"

    async def append(self, args: Args, uid: bool) -> str:
        raw = args.string()
        flags: list[str] = []
        if args.next_is_list():
            flags = parse_flags(args.token())
        when: datetime | None = None
        token = args.token()
        if isinstance(token, str):
            when = parse_date(token)
            if when is None:
                raise Bad("APPEND's date-time is not like \" 7-Mar-2024 09:15:00 +0100\"")
            token = args.token()
        if not isinstance(token, bytes):
            raise Bad("APPEND wants the message as a literal")
        args.end()
        folder = self.find(raw)
        if folder is None:
            raise No("TRYCREATE", f"no folder {folder_name(raw)!r}")
        message = folder.add(token, flags, when)
        self.server.changed(folder, by=self)
        return f"[APPENDUID {folder.uidvalidity} {message.uid}] APPEND completed"

    async def idle(self, args: Args, uid: bool) -> str:
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
                    raise Gone()
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
            raise Gone() from None
        if line.rstrip(b"\r\n").upper() != b"DONE":
            raise Bad("IDLE ends with DONE")
        return "IDLE terminated"

    # --- the selected folder ----------------------------------------------------------------

    async def close(self, args: Args, uid: bool) -> str:
        args.end()
        folder = self.folder
        assert folder is not None
        if not self.readonly:  # removes what is marked \Deleted, silently
            folder.remove(m.uid for m in folder.messages if "\\Deleted" in m.flags)
            self.server.changed(folder, by=self)
        self.deselect()
        return "CLOSE completed"

    async def unselect(self, args: Args, uid: bool) -> str:
        args.end()
        self.deselect()
        return "UNSELECT completed"

    async def expunge(self, args: Args, uid: bool) -> str:
        assert self.folder is not None
        wanted = {m.uid for _, m in self.selected(args.atom(), True)} if uid else None
        args.end()
        if self.readonly:
            raise No("READ-ONLY", "the folder is open read-only (EXAMINE)")
        self.folder.remove(m.uid for m in self.folder.messages
                           if "\\Deleted" in m.flags and (wanted is None or m.uid in wanted))
        self.server.changed(self.folder, by=self)
        return f"{'UID ' if uid else ''}EXPUNGE completed"  # the EXPUNGE responses come with sync()

    async def fetch(self, args: Args, uid: bool) -> str:
        targets = self.selected(args.atom(), uid)
        items = parse_fetch_items(args.token())
        args.end()
        if uid and not any(item.name == "UID" for item in items):
            items.insert(0, FetchItem("UID"))
        for seq, message in targets:
            self.writer.write(self.fetch_response(seq, message, items))
        return f"{'UID ' if uid else ''}FETCH completed"

    def fetch_response(self, seq: int, message: Message, items: list[FetchItem]) -> bytes:
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

    async def store(self, args: Args, uid: bool) -> str:
        targets = self.selected(args.atom(), uid)
        action = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", args.atom().upper())
        if action is None:
            raise Bad("STORE wants FLAGS, +FLAGS or -FLAGS (.SILENT)")
        tokens = args.rest()
        flags = parse_flags(tokens[0] if len(tokens) == 1 and isinstance(tokens[0], list) else tokens)
        if self.readonly:
            raise No("READ-ONLY", "the folder is open read-only (EXAMINE)")
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

    async def search(self, args: Args, uid: bool) -> str:
        tokens = args.rest()
        if len(tokens) >= 2 and isinstance(tokens[0], str) and tokens[0].upper() == "CHARSET":
            charset = tokens[1]
            if not isinstance(charset, str) or charset.upper() not in ("US-ASCII", "UTF-8"):
                raise No("BADCHARSET (US-ASCII UTF-8)", "unsupported charset")
            tokens = tokens[2:]
        if not tokens:
            raise Bad("SEARCH wants a search key")
        matches = SearchKeys(self, tokens).all()
        assert self.folder is not None
        by_uid = {m.uid: m for m in self.folder.messages}
        found = [uid_ if uid else seq for seq, uid_ in enumerate(self.view, 1)
                 if uid_ in by_uid and matches(seq, by_uid[uid_])]
        self.send("* SEARCH" + "".join(f" {n}" for n in found))
        return f"{'UID ' if uid else ''}SEARCH completed"

    async def copy(self, args: Args, uid: bool) -> str:
        return self._transfer(args, uid, move=False)

    async def move(self, args: Args, uid: bool) -> str:
        return self._transfer(args, uid, move=True)

    def _transfer(self, args: Args, uid: bool, *, move: bool) -> str:
        """COPY or MOVE (RFC 6851): copies in the target, COPYUID (RFC 4315); MOVE then expunges the originals."""
        targets = self.selected(args.atom(), uid)
        raw = args.string()
        args.end()
        source = self.folder
        assert source is not None
        verb = ("UID " if uid else "") + ("MOVE" if move else "COPY")
        if move and self.readonly:
            raise No("READ-ONLY", "the folder is open read-only (EXAMINE)")
        target = self.find(raw)
        if target is None:
            raise No("TRYCREATE", f"no folder {folder_name(raw)!r}")
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
