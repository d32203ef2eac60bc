"""Events written to a file an admin can open: CSV for spreadsheets, JSON for scripts.

The Events tab exports what its filters show; the fields are every stored
field of an event (:func:`~pop3gui.core.events.model.event_record`), with a
server's reply as it was given.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from pop3gui.core.errors import Pop3guiError
from pop3gui.core.events.model import Event, event_record
from pop3gui.core.events.search import EventFilter
from pop3gui.core.events.store import EventStore

__all__ = ["EXPORT_FIELDS", "ExportError", "export_events", "export_store"]

EXPORT_FIELDS = ("seq", "time", "id", "severity", "account", "uid", "message_id", "subject", "text", "recipient",
                 "reply", "diagnosis", "outcome", "cause", "fix", "transcript")


class ExportError(Pop3guiError, OSError):
    """The events could not be written to the chosen file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"Could not export the events to {path}: {reason}",
            cause=reason,
            fix="Choose a folder you can write to (for example your Documents folder) and check that the "
                "file is not open in another program.",
        )
        self.path = path
        self.reason = reason


def export_events(events: Iterable[Event], path: str | Path, fmt: str | None = None) -> int:
    """Write ``events`` to ``path`` as CSV or JSON; returns how many were written.

    ``fmt`` is ``"csv"`` or ``"json"``; by default the file's extension decides
    (``.json`` is JSON, anything else CSV).  CSV is UTF-8 with a byte-order mark
    so that spreadsheet programs read accents correctly.  The events are written
    as they come (a million of them never sit in memory at once), into a
    ``.part`` file that takes the name only when it is whole.  Raises
    :class:`ExportError`, naming the file, when it cannot be written.
    """
    path = Path(path)
    if fmt is None:
        fmt = "json" if path.suffix.lower() == ".json" else "csv"
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}")
    part = path.with_name(path.name + ".part")
    try:
        if fmt == "json":
            with part.open("w", encoding="utf-8") as f:
                written = _write_json(events, f)
        else:
            with part.open("w", encoding="utf-8-sig", newline="") as f:
                written = _write_csv(events, f)
        os.replace(part, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise ExportError(path, exc.strerror or str(exc)) from exc
    return written


def export_store(store_path: Path, flt: EventFilter, path: str | Path, fmt: str | None = None) -> int:
    """Export the events of the store at *store_path* that pass *flt*, on a connection of this thread's own.

    What the Events tab runs in a worker thread: an export of a long history
    takes seconds, and the window's loop also runs the connector.
    """
    store = EventStore(store_path)
    try:
        return export_events(store.matching(flt), path, fmt)
    finally:
        store.close()


def _write_json(events: Iterable[Event], f: TextIO) -> int:
    """A JSON array of records, one at a time, laid out as ``json.dump(..., indent=2)`` would."""
    written = 0
    for event in events:
        f.write(",\n" if written else "[\n")
        f.write(textwrap.indent(json.dumps(event_record(event), ensure_ascii=False, indent=2), "  "))
        written += 1
    f.write("\n]\n" if written else "[]\n")
    return written


def _write_csv(events: Iterable[Event], f: TextIO) -> int:
    writer = csv.DictWriter(f, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    written = 0
    for event in events:
        r = event_record(event)
        writer.writerow({**r, "reply": _reply_text(r["reply"]), "diagnosis": r["diagnosis"] or "",
                         "outcome": r["outcome"] or ""})
        written += 1
    return written


def _reply_text(reply: dict[str, Any] | None) -> str:
    """A reply in one CSV cell, as the server gave it: ``550 5.7.1 Unable to relay``."""
    if reply is None:
        return ""
    return " ".join(str(part) for part in (reply["code"], reply["enhanced"], reply["text"]) if part)
