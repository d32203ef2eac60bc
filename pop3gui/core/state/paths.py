"""Where pop3gui keeps its files.

By default the platform's usual folders (platformdirs); ``POP3GUI_HOME=DIR``
puts everything under one folder instead, for portable installs and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs

APP_NAME = "pop3gui"
HOME_ENV = "POP3GUI_HOME"


@dataclass(frozen=True)
class Paths:
    """The files and folders of one connector installation."""

    config_file: Path
    state_dir: Path
    log_dir: Path

    @property
    def journal_db(self) -> Path:
        return self.state_dir / "journal.sqlite3"

    @property
    def events_db(self) -> Path:
        return self.state_dir / "events.sqlite3"

    @property
    def health_db(self) -> Path:
        """Each account's health and the active alerts, shared by the runner, the tray and ``pop3gui status``."""
        return self.state_dir / "health.sqlite3"

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def resubmit_dir(self) -> Path:
        """Copies of quarantined messages while they are resubmitted: apart from the spool a cycle clears."""
        return self.state_dir / "resubmit"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "pop3gui.log"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "runner.lock"

    @property
    def sign_in_locks(self) -> Path:
        """One lock file per OAuth2 sign-in: two processes never refresh the same one at once."""
        return self.state_dir / "sign-in-locks"


def default_paths(config_override: str | os.PathLike[str] | None = None) -> Paths:
    """Resolve the folders from ``POP3GUI_HOME`` or platformdirs; ``--config`` wins for the file."""
    home = os.environ.get(HOME_ENV)
    if home:
        base = Path(home).expanduser()
        paths = Paths(config_file=base / "config.toml", state_dir=base / "state", log_dir=base / "logs")
    else:
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        paths = Paths(
            config_file=Path(dirs.user_config_dir) / "config.toml",
            state_dir=Path(dirs.user_state_dir),
            log_dir=Path(dirs.user_log_dir),
        )
    if config_override is not None:
        paths = Paths(Path(config_override).expanduser(), paths.state_dir, paths.log_dir)
    return paths


def ensure_private_dir(path: Path) -> Path:
    """Create a folder, and any missing parents, readable only by their owner (mail is private)."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)  # raises when a file is in the way
    return path


def touch_private(path: Path) -> Path:
    """Create ``path`` (and its folder) readable only by its owner, if it does not exist.

    SQLite gives its -wal and -shm files the database file's mode, so
    touching a database first keeps all three private.
    """
    ensure_private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600))
    return path


def open_private(path: Path) -> BinaryIO:
    """Open a new file for writing, readable only by its owner (spool, quarantine)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    return os.fdopen(fd, "wb")
