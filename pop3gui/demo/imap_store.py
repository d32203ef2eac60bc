"""The demo IMAP server's mailboxes: folders, messages, UIDs, UIDVALIDITY and flags, in memory.

Kept apart from the protocol so that what the server holds - and what the
demo and the tests put in or read back (:class:`MailStore`, which
:class:`~pop3gui.demo.imap_server.DemoImapServer` is) - reads without any
IMAP syntax.  The store also knows which sessions watch which folder
(:class:`Watcher`) and wakes them when it changes, so that a session idling
on a folder hears of new or expunged mail at once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from pop3gui.core.imap.parse import decode_folder
from pop3gui.demo.pop3_server import to_crlf

DELIMITER = "/"


@dataclass(eq=False)
class Message:
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
class Folder:
    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: list[Message] = field(default_factory=list)  # in UID order
    recent: set[int] = field(default_factory=set)  # UIDs no read-write session has been told of yet
    subscribed: bool = True
    alive: bool = True  # False once deleted or renumbered: sessions that have it selected end

    def add(self, data: bytes, flags: Iterable[str] = (), when: datetime | None = None) -> Message:
        message = Message(self.uidnext, data, set(flags) - {"\\Recent"})
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
    folders: dict[str, Folder] = field(default_factory=dict)
    sessions: int = 0  # logins that succeeded
    oauth: bool = False  # logs in only with an OAuth2 access token, never with a password


def folder_name(raw: str) -> str:
    """A folder name from the wire (modified UTF-7) as text; INBOX in any case is INBOX."""
    name = decode_folder(raw)
    return "INBOX" if name.upper() == "INBOX" else name


def list_pattern(pattern: str) -> re.Pattern[str]:
    """A LIST pattern: ``*`` matches anything, ``%`` anything but the delimiter; INBOX in any case."""
    parts = [".*" if c == "*" else f"[^{re.escape(DELIMITER)}]*" if c == "%" else re.escape(c) for c in pattern]
    text = "".join(parts)
    if pattern.upper().startswith("INBOX"):
        text = "(?i:INBOX)" + "".join(parts[5:])
    return re.compile(text)



class Watcher(Protocol):
    """A session as the store sees it: whose it is, the folder it has selected, whether it idles there."""

    user: str
    folder: Folder | None
    idling: bool
    wake: asyncio.Event  # set when another session (or the demo) changed the selected folder


class MailStore:
    """Every user's mailbox, and the sessions watching its folders."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, Mailbox] = {}
        self._uidvalidity = itertools.count(int(time.time()))
        self._sessions: set[Watcher] = set()

    def add_mailbox(self, user: str, password: str, folders: Mapping[str, Sequence[bytes]] | None = None, *,
                    oauth: bool = False) -> None:
        """A mailbox with INBOX and *folders* (name -> messages); with *oauth* it logs in only with a token."""
        box = Mailbox("" if oauth else password, oauth=oauth)
        box.folders["INBOX"] = Folder("INBOX", next(self._uidvalidity))
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
                box.folders[path] = Folder(path, next(self._uidvalidity))

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
        new = Folder(old.name, next(self._uidvalidity), subscribed=old.subscribed)
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

    def _folder(self, user: str, name: str) -> Folder:
        return self.mailboxes[user].folders[folder_name(name)]

    def changed(self, folder: Folder, by: Watcher | None = None) -> None:
        """Wake the other sessions that have *folder* selected: an idling one tells its client at once."""
        for session in self._sessions:
            if session.folder is folder and session is not by:
                session.wake.set()

    def new_folder(self, name: str) -> Folder:
        return Folder(name, next(self._uidvalidity))
