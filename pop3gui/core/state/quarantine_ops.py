"""What an admin does to the quarantine besides resubmitting: find, read, export, remove.

The command line names messages by ID or by a unique beginning of one, and
must also show what the spool's own reader skips: a message whose record
file is missing or damaged is still a message (``QuarantineEntry.record`` is
None), and a record whose .eml is gone says so instead of vanishing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from pop3gui.core.errors import ConfigError, StateError
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.state.spool import Quarantine, QuarantineRecord, fsync_file

HOW_TO_FIND_IDS = "List the quarantined messages and their IDs with `pop3gui quarantine list`."

DAY = 86400.0
WARN_AHEAD = DAY
"""An alert lists a message for removal this long before its keep days are up ([delivery] quarantine_keep_days)."""
GRACE = DAY
"""A message is never removed sooner than this after the alert that listed it, even when the runner was not
running when the alert was due: the admin always gets a day to resubmit or export it."""


def expiry_listed(record: QuarantineRecord, keep_days: int, now: float) -> bool:
    """Is the message close enough to its keep days that an alert must list it (keep_days 0: kept forever)?"""
    return keep_days > 0 and now - record.quarantined_at >= keep_days * DAY - WARN_AHEAD


def removal_at(record: QuarantineRecord, keep_days: int, warned_at: float) -> float:
    """When a message listed by an alert at *warned_at* may be removed: its keep days are up, and a day has
    passed since the alert."""
    return max(record.quarantined_at + keep_days * DAY, warned_at + GRACE)


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined message as found on disk: its record when readable, and whether its .eml is there."""

    id: str
    record: QuarantineRecord | None
    message: Path | None  # the .eml file, None when it is missing
    size: int = 0


def entries(quarantine: Quarantine) -> list[QuarantineEntry]:
    """Every quarantined message, oldest first: records and lone .eml files alike."""
    root = quarantine.root
    if not root.exists():
        return []
    try:
        ids = {p.stem for p in root.iterdir() if p.suffix in (".json", ".eml") and p.is_file()}
    except OSError as exc:
        raise StateError(
            f"cannot read the quarantine folder {root}: {exc.strerror or exc}",
            cause="The state folder is not readable by this user.",
            fix="Run the command as the user the connector runs as, or fix the folder's permissions.",
        ) from exc
    return sorted((entry(quarantine, i) for i in ids), key=_age_key)


def _age_key(e: QuarantineEntry) -> tuple[float, str]:
    return (e.record.quarantined_at if e.record else 0.0, e.id)


def entry(quarantine: Quarantine, record_id: str) -> QuarantineEntry:
    try:
        record: QuarantineRecord | None = quarantine.get(record_id)
    except StateError:
        record = None
    path = quarantine.message_path(record_id)
    try:
        size = path.stat().st_size
    except OSError:
        return QuarantineEntry(record_id, record, None)
    return QuarantineEntry(record_id, record, path, size)


def resolve(quarantine: Quarantine, wanted: list[str]) -> list[QuarantineEntry]:
    """The entries named by full IDs or unique beginnings of IDs, in the order given, each once.

    Raises ConfigError (a bad argument) naming every ID that matches nothing
    or more than one message.
    """
    known = entries(quarantine)
    found: list[QuarantineEntry] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for text in wanted:
        text = text.strip()
        exact = [e for e in known if e.id == text]
        matches = exact or [e for e in known if text and e.id.startswith(text)]
        if len(matches) == 1:
            if matches[0] not in found:
                found.append(matches[0])
        elif matches:
            ambiguous.append(f"{text} ({len(matches)} messages)")
        else:
            unknown.append(text)
    if unknown or ambiguous:
        parts = []
        if unknown:
            parts.append(f"no quarantined message has the ID {', '.join(unknown)}")
        if ambiguous:
            parts.append(f"more than one message begins with {', '.join(ambiguous)}")
        raise ConfigError(
            "; ".join(parts),
            cause="An ID (or its first characters) must name exactly one message in "
            f"{quarantine.root}; a message resubmitted or deleted meanwhile is no longer there."
            if known else f"The quarantine ({quarantine.root}) is empty.",
            fix=HOW_TO_FIND_IDS + " Give more of the ID when several begin the same way.",
        )
    return found


def headers(e: QuarantineEntry) -> EmailMessage:
    """The message's header block (not its body), decoded for display."""
    if e.message is None:
        raise StateError(
            f"the message file of {e.id} is missing",
            cause="Its .eml file was removed by hand or by another program; only the record is left.",
            fix="Delete the entry with `pop3gui quarantine delete`; the reason it was kept is still shown.",
        )
    try:
        with e.message.open("rb") as fh:
            parsed = BytesHeaderParser(policy=policy.default).parse(fh)
    except OSError as exc:
        raise StateError(f"cannot read {e.message}: {exc.strerror or exc}",
                         cause="The quarantine folder is not readable by this user.",
                         fix="Run the command as the user the connector runs as.") from exc
    assert isinstance(parsed, EmailMessage)
    return parsed


def export(e: QuarantineEntry, target: Path) -> Path:
    """Copy the .eml byte for byte to *target* (a file); the quarantined copy stays where it is.

    The copy is written beside the target and renamed into place, so a failed
    export leaves neither a half-written file nor a changed one.
    """
    if e.message is None:
        raise StateError(
            f"{e.id} cannot be exported: its message file is missing",
            cause="Its .eml file was removed by hand or by another program.",
            fix="Nothing is left to export; `pop3gui quarantine show` still shows why it was kept.",
        )
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with e.message.open("rb") as src, tmp.open("xb") as dst:
            shutil.copyfileobj(src, dst)
            fsync_file(dst)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        where = exc.filename if exc.filename and Path(exc.filename) != tmp else target
        raise StateError(
            f"cannot export {e.id} to {where}: {exc.strerror or exc}",
            cause="The target folder does not exist, is not writable by this user, or the disk is full.",
            fix="Choose a folder you can write to; the message is still in quarantine.",
        ) from exc
    return target


def export_to_dir(e: QuarantineEntry, folder: Path) -> Path:
    """Export into *folder* (made when missing) as ``ID.eml``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the folder {folder}: {exc.strerror or exc}",
            cause="Its parent folder is not writable by this user, or a file has that name.",
            fix="Choose a folder you can write to; the messages are still in quarantine.",
        ) from exc
    return export(e, folder / f"{e.id}.eml")


def remove(quarantine: Quarantine, e: QuarantineEntry) -> None:
    """Delete a quarantined message for good (its .eml and its record)."""
    try:
        quarantine.remove(e.id)
    except OSError as exc:
        raise StateError(
            f"cannot delete {e.id}: {exc.strerror or exc}",
            cause="The quarantine folder is not writable by this user.",
            fix="Run the command as the user the connector runs as.",
        ) from exc


def deleted_event(e: QuarantineEntry, where: str) -> Event:
    """The record of a deletion by an admin: which message it was, so the history keeps its trace."""
    r = e.record
    what = (f"from {r.sender or '(no sender)'}, subject {r.subject or '(no subject)'!r}" if r is not None
            else "(its record was unreadable)")
    return Event(EventId.QUARANTINE_DELETED, Severity.INFO,
                 f"Deleted the quarantined message {e.id} {what} ({where}).",
                 account=r.account if r else "", uid=r.uid if r else "", message_id=r.message_id if r else "",
                 subject=r.subject if r else "")
