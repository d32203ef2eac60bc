"""Where pop3gui keeps its files, and the private files and folders it makes there."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pop3gui.core.state.paths import HOME_ENV, Paths, default_paths, ensure_private_dir, open_private, touch_private

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away, so the modes seen are the ones the code asked for."""
    old = os.umask(0)
    yield None
    os.umask(old)


# -- which folders ---------------------------------------------------------------------------


def test_pop3gui_home_puts_everything_under_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "portable"))
    paths = default_paths()
    base = tmp_path / "portable"
    assert paths == Paths(base / "config.toml", base / "state", base / "logs")


def test_pop3gui_home_may_start_with_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    monkeypatch.setenv(HOME_ENV, "~/pop3gui")
    assert default_paths().state_dir == tmp_path / "pop3gui" / "state"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG folders are Linux's")
@pytest.mark.parametrize("home_value", [None, ""])
def test_without_pop3gui_home_the_users_xdg_folders_are_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home_value: str | None) -> None:
    if home_value is None:
        monkeypatch.delenv(HOME_ENV, raising=False)
    else:
        monkeypatch.setenv(HOME_ENV, home_value)  # set but empty: as if unset
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    paths = default_paths()
    assert paths.config_file == tmp_path / "config" / "pop3gui" / "config.toml"
    assert paths.state_dir == tmp_path / "state" / "pop3gui"
    assert paths.log_dir.is_relative_to(tmp_path / "state" / "pop3gui")


def test_config_override_moves_only_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    paths = default_paths("~/elsewhere/site.toml")
    assert paths.config_file == tmp_path / "elsewhere" / "site.toml"
    assert (paths.state_dir, paths.log_dir) == (tmp_path / "home" / "state", tmp_path / "home" / "logs")


def test_every_state_file_has_its_own_place_in_the_state_and_log_folders(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "c.toml", tmp_path / "state", tmp_path / "logs")
    state_files = [paths.journal_db, paths.events_db, paths.spool_dir, paths.quarantine_dir, paths.lock_file]
    assert all(p.parent == paths.state_dir for p in state_files)
    assert paths.log_file.parent == paths.log_dir
    assert len({*state_files, paths.log_file, paths.config_file}) == 7


# -- private folders and files ----------------------------------------------------------------


@posix_only
def test_ensure_private_dir_makes_every_missing_folder_private(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert ensure_private_dir(target) == target
    assert [_mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3


@posix_only
def test_ensure_private_dir_leaves_existing_folders_as_they_are(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_private_dir(tmp_path / "new")
    assert _mode(tmp_path) == 0o755
    assert ensure_private_dir(tmp_path / "new") == tmp_path / "new"


def test_ensure_private_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file")
    with pytest.raises(OSError):
        ensure_private_dir(tmp_path / "state")
    with pytest.raises(OSError):
        ensure_private_dir(tmp_path / "state" / "spool")


@posix_only
def test_touch_private_creates_a_private_file_and_keeps_what_is_in_it(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "state" / "journal.sqlite3"
    assert touch_private(db) == db
    assert _mode(db) == 0o600 and _mode(db.parent) == 0o700 and db.read_bytes() == b""
    db.write_bytes(b"SQLite format 3\x00")
    touch_private(db)
    assert db.read_bytes() == b"SQLite format 3\x00"


@posix_only
def test_open_private_writes_a_new_private_file(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "m.eml"
    with open_private(target) as fh:
        fh.write(b"\r\n\x00\xff")
    assert target.read_bytes() == b"\r\n\x00\xff"
    assert _mode(target) == 0o600


def test_open_private_replaces_what_an_earlier_attempt_left(tmp_path: Path) -> None:
    target = tmp_path / "m.eml"
    target.write_bytes(b"a longer leftover of an interrupted download")
    with open_private(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
