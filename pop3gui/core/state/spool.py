"""Spool and quarantine folders: where message bytes wait on the local disk.

A spool file (or, for a small message, memory) is a cache of a message that
is still on the POP3 server: until the journal records an outcome, the
server's copy is the one that counts, so spool files can always be thrown
away.  Quarantine is the opposite: the last home of a message nobody would
accept, kept until the admin acts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from pop3gui.core.errors import StateError
from pop3gui.core.state.paths import ensure_private_dir, open_private

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(text: str) -> str:
    """A file-name-safe, collision-free token for an account name or UIDL."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{_SAFE.sub('_', text)[:40]}-{digest}"


def fsync_file(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


#: A message up to this size waits for submission in memory instead of a spool file;
#: with the worker's bounded queue that is a few MiB per mailbox at most.
IN_MEMORY_LIMIT = 256 * 1024


class SpoolWriter:
    """Where RETR writes one message: memory while it is small, its spool file once it is not.

    The LIST size only decides where to start (a server may under-report it):
    data that outgrows the limit moves to the spool file and goes on there.
    A message that stayed small is handed to *keep* when the writer closes
    without an error; a spilled one is in its file.
    """

    def __init__(self, size: int, open_file: Callable[[], BinaryIO], keep: Callable[[bytes], None]) -> None:
        self._open_file = open_file
        self._keep = keep
        self._chunks: list[bytes] = []
        self._size = 0
        self._file: BinaryIO | None = open_file() if size > IN_MEMORY_LIMIT else None

    def write(self, data: bytes, /) -> int:
        if self._file is not None:
            return self._file.write(data)
        self._chunks.append(data)
        self._size += len(data)
        if self._size > IN_MEMORY_LIMIT:
            self._file = self._open_file()
            for chunk in self._chunks:
                self._file.write(chunk)
            self._chunks.clear()
        return len(data)

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
        elif exc_type is None:
            self._keep(b"".join(self._chunks))
        self._chunks.clear()


class Spool:
    """Per-account folders of downloaded messages waiting for their outcome."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, account: str) -> Path:
        try:
            return ensure_private_dir(self.root / _safe_name(account))
        except OSError as exc:
            raise StateError(
                f"cannot create the spool folder under {self.root}: {exc.strerror}",
                cause="The state folder is not writable or the disk is full.",
                fix="Check the folder's permissions and free space; messages stay on the POP3 server meanwhile.",
            ) from exc

    def path_for(self, account: str, uid: str) -> Path:
        return self.folder(account) / f"{_safe_name(uid)}.eml"

    def clear(self, account: str) -> int:
        """Remove leftovers of an interrupted run (their messages are still on the server)."""
        count = 0
        for leftover in self.folder(account).iterdir():
            leftover.unlink(missing_ok=True)
            count += 1
        return count

    def leftovers(self) -> list[Path]:
        if not self.root.exists():
            return []
        return [p for p in self.root.rglob("*") if p.is_file()]


@dataclass(frozen=True)
class QuarantineRecord:
    """Why a message is in quarantine, next to its .eml file."""

    id: str
    account: str
    uid: str
    message_id: str
    sender: str
    subject: str
    date: str
    recipients: list[str]
    reason: str
    cause: str
    fix: str
    transcript: str
    quarantined_at: float


class Quarantine:
    """Messages the connector could deliver nowhere: ``ID.eml`` plus ``ID.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, message: bytes | Path, record: QuarantineRecord) -> Path:
        """Copy a message (bytes or a file) in durably: the .eml first, then its record, both fsynced."""
        try:
            ensure_private_dir(self.root)
            target = self.root / f"{record.id}.eml"
            tmp = target.with_suffix(".eml.tmp")
            with open_private(tmp) as dst:
                if isinstance(message, bytes):
                    dst.write(message)
                else:
                    with message.open("rb") as src:
                        shutil.copyfileobj(src, dst)
                fsync_file(dst)
            os.replace(tmp, target)
            meta = self.root / f"{record.id}.json"
            with open_private(meta) as fh:
                fh.write(json.dumps(asdict(record), indent=2).encode("utf-8"))
                fsync_file(fh)
            return target
        except OSError as exc:
            raise StateError(
                f"cannot write to the quarantine folder {self.root}: {exc.strerror}",
                cause="The state folder is not writable or the disk is full.",
                fix="Free disk space or fix the folder's permissions; the message stays on the POP3 server.",
            ) from exc

    def new_id(self, account: str, uid: str) -> str:
        """An ID no message in quarantine has: a resubmission refused again within the second it was
        first quarantined must not take the ID of the entry it replaces (that one is removed after)."""
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_safe_name(account + '/' + uid)}"
        candidate, n = base, 1
        while (self.root / f"{candidate}.json").exists() or (self.root / f"{candidate}.eml").exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def records(self) -> Iterator[QuarantineRecord]:
        if not self.root.exists():
            return
        for meta in sorted(self.root.glob("*.json")):
            try:
                yield QuarantineRecord(**json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue

    def get(self, record_id: str) -> QuarantineRecord:
        """The record of one quarantined message (StateError when it is gone)."""
        meta = self.root / f"{record_id}.json"
        try:
            return QuarantineRecord(**json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise StateError(
                f"the quarantined message {record_id} cannot be read: {exc}",
                cause="It was deleted or resubmitted meanwhile, or its record file is damaged.",
                fix="Refresh the quarantine list; the .eml file, if present, can still be exported.",
            ) from exc

    def message_path(self, record_id: str) -> Path:
        return self.root / f"{record_id}.eml"

    def remove(self, record_id: str) -> None:
        # The message first: interrupted in between, the record stays listed (its .eml missing, which
        # `pop3gui quarantine` shows) instead of an unlisted message file nobody would find.
        (self.root / f"{record_id}.eml").unlink(missing_ok=True)
        (self.root / f"{record_id}.json").unlink(missing_ok=True)
