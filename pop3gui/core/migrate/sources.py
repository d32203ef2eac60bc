"""Which reader a file kind takes: one entry point for the command line and the window."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate.fetchmailrc import read_fetchmailrc
from pop3gui.core.migrate.from_fetchmail import fetchmail_plan
from pop3gui.core.migrate.from_getmail import getmail_plan
from pop3gui.core.migrate.getmailrc import read_getmailrc
from pop3gui.core.migrate.report import ImportPlan

__all__ = ["KINDS", "read_plans"]

KINDS = ("fetchmailrc", "getmailrc")


def read_plans(kind: str, files: Sequence[Path], login: str | None = None) -> list[ImportPlan]:
    """Read every file of one kind; ConfigError (file:line, expected, fix) for the first bad one."""
    if kind == "fetchmailrc":
        return [fetchmail_plan(read_fetchmailrc(path), login) for path in files]
    if kind == "getmailrc":
        return [getmail_plan(read_getmailrc(path), login) for path in files]
    raise ConfigError(f"unknown kind of file {kind!r}", fix=f"Use one of: {', '.join(KINDS)}.")
