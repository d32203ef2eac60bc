"""Events written to a file an admin can open: CSV for spreadsheets, JSON for scripts.

The Events tab exports what its filters show; the fields are every stored
field of an event (:func:`~pop3gui.core.events.model.event_record`), with a
server's reply as it was given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pop3gui.core.errors import Pop3guiError
from pop3gui.core.events.model import Event, event_record

__all__ = ["EXPORT_FIELDS", "ExportError", "export_events"]

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
    so that spreadsheet programs read accents correctly.  Raises
    :class:`ExportError`, naming the file, when it cannot be written.
    """
    path = Path(path)
    if fmt is None:
        fmt = "json" if path.suffix.lower() == ".json" else "csv"
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}")
    records = [event_record(e) for e in events]
    try:
        if fmt == "json":
            with path.open("w", encoding="utf-8") as f:
                json.dump(records, f, ensure_ascii=False, indent=2)
                f.write("\n")
        else:
            with path.open("w", encoding="utf-8-sig", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=EXPORT_FIELDS)
                writer.writeheader()
                writer.writerows({**r, "reply": _reply_text(r["reply"]), "diagnosis": r["diagnosis"] or "",
                                  "outcome": r["outcome"] or ""} for r in records)
    except OSError as exc:
        raise ExportError(path, exc.strerror or str(exc)) from exc
    return len(records)


def _reply_text(reply: dict[str, Any] | None) -> str:
    """A reply in one CSV cell, as the server gave it: ``550 5.7.1 Unable to relay``."""
    if reply is None:
        return ""
    return " ".join(str(part) for part in (reply["code"], reply["enhanced"], reply["text"]) if part)
