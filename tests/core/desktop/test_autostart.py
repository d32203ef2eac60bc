"""Autostart with the desktop session: the XDG autostart entry (Linux)."""

from __future__ import annotations

import configparser
import shlex
import sys
from pathlib import Path

import pytest

from pop3gui.core.desktop import autostart
from pop3gui.core.desktop.autostart import autostart_enabled, disable_autostart, enable_autostart, tray_command

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG autostart entry is Linux's")


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_enable_writes_a_desktop_entry_running_the_tray(config_home: Path) -> None:
    assert not autostart_enabled()
    where = enable_autostart()
    entry_path = config_home / "autostart" / "pop3gui.desktop"
    assert where == str(entry_path) and entry_path.is_file()
    entry = read_entry(entry_path)
    assert entry["Type"] == "Application" and entry["Name"] == "POP3 Connector"
    argv = shlex.split(entry["Exec"])
    assert argv == tray_command()
    assert argv[-1] == "tray" and Path(argv[0]).is_absolute()
    assert autostart_enabled()


def test_disable_removes_it_and_is_idempotent(config_home: Path) -> None:
    enable_autostart()
    disable_autostart()
    assert not (config_home / "autostart" / "pop3gui.desktop").exists()
    assert not autostart_enabled()
    disable_autostart()  # nothing to remove: no error


def test_default_location_is_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    enable_autostart()
    assert (tmp_path / ".config" / "autostart" / "pop3gui.desktop").is_file()
    disable_autostart()


def test_without_the_console_script_python_dash_m_is_used(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autostart.shutil, "which", lambda _name: None)
    assert tray_command() == [sys.executable, "-m", "pop3gui", "tray"]
    enable_autostart()
    assert shlex.split(read_entry(config_home / "autostart" / "pop3gui.desktop")["Exec"]) == \
        [sys.executable, "-m", "pop3gui", "tray"]


def test_paths_with_spaces_are_quoted(config_home: Path) -> None:
    enable_autostart(["/opt/my apps/pop3gui", "tray"])
    exec_line = read_entry(config_home / "autostart" / "pop3gui.desktop")["Exec"]
    assert exec_line == '"/opt/my apps/pop3gui" tray'
    assert shlex.split(exec_line) == ["/opt/my apps/pop3gui", "tray"]


def test_an_entry_hidden_by_the_desktop_counts_as_off(config_home: Path) -> None:
    enable_autostart()
    path = config_home / "autostart" / "pop3gui.desktop"
    path.write_text(path.read_text() + "Hidden=true\n")
    assert not autostart_enabled()


def test_unwritable_folder_raises_oserror(config_home: Path) -> None:
    config_home.mkdir()
    (config_home / "autostart").write_text("a file where the folder should be")
    with pytest.raises(OSError):
        enable_autostart()
