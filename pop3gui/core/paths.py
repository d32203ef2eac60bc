"""Where pop3gui keeps its files.

By default the platform's usual folders (platformdirs); ``POP3GUI_HOME=DIR``
puts everything under one folder instead, for portable installs and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "pop3gui.log"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "runner.lock"


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
    """Create a folder readable only by its owner (mail and state are private)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
