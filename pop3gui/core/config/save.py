"""Writing the configuration file: the documented TOML, whole and valid, atomically.

The config is validated before anything touches the disk, and the new file
replaces the old one by a rename, so the file on disk is only ever whole and
valid.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from pop3gui.core.config.load import parse_config
from pop3gui.core.config.model import IMAP_ONLY_KEYS, AccountConfig, Config
from pop3gui.core.state.paths import ensure_private_dir

__all__ = ["config_to_dict", "save_config"]


def config_to_dict(config: Config) -> dict[str, Any]:
    """The TOML document for a config, in the documented key names and order."""

    def plain(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    return {
        "version": config.version,
        "smtp": plain(config.smtp),
        "schedule": _schedule(plain(config.schedule)),
        "alerts": plain(config.alerts),
        "delivery": plain(config.delivery),
        "events": plain(config.events),
        "logging": plain(config.logging),
        "performance": plain(config.performance),
        "recipient_policy": [plain(p) for p in config.policies],
        "account": [_account(plain(a), a) for a in config.accounts],
        "routing_rule": [plain(r) for r in config.rules],
        "oauth_provider": [plain(o) for o in config.oauth_providers],
    }


def _schedule(table: dict[str, Any]) -> dict[str, Any]:
    """The schedule's table: ``hours`` lists only the days that do not run all day, and is left out if none."""
    hours = table.pop("hours").to_table()
    if hours:
        table["hours"] = hours
    return table


def _account(table: dict[str, Any], account: AccountConfig) -> dict[str, Any]:
    """A POP3 account's table without the keys only IMAP reads."""
    if account.protocol != "imap":
        for key in IMAP_ONLY_KEYS:
            del table[key]
    return table


def save_config(config: Config, path: Path) -> None:
    """Write the whole file atomically (temp file, fsync, rename), mode 0600; ConfigError if invalid."""
    document = config_to_dict(config)
    parse_config(document, str(path))
    text = tomli_w.dumps(document)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600) if hasattr(os, "fchmod") else None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; folders cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
