"""Start the tray runner with the user's desktop session (no Qt).

This is per-user desktop state, not part of ``config.toml``.  The only
platform-specific part is :func:`_backend`: an XDG autostart entry on Linux
and other freedesktop systems (tested), a ``Run`` registry value on Windows and
a LaunchAgent on macOS (written with care, untested here).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import sys
from pathlib import Path
from typing import Protocol

ENTRY_NAME = "pop3gui"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
LAUNCH_AGENT_LABEL = "org.pop3gui.tray"


def tray_command() -> list[str]:
    """How to start ``pop3gui tray``: the installed console script if found, else ``python -m pop3gui``."""
    script = shutil.which("pop3gui")
    if script:
        return [str(Path(script).resolve()), "tray"]
    return [sys.executable, "-m", "pop3gui", "tray"]


class _Backend(Protocol):
    def enable(self, command: list[str]) -> None: ...
    def disable(self) -> None: ...
    def enabled(self) -> bool: ...
    def location(self) -> str: ...


def _desktop_exec(command: list[str]) -> str:
    """Quote an argv for a desktop entry's Exec key (spec: double quotes, \\ " ` $ escaped)."""
    def quote(arg: str) -> str:
        if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`%='):
            return arg
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        return f'"{escaped}"'.replace("%", "%%")
    return " ".join(quote(a) for a in command)


class XdgAutostart:
    """``$XDG_CONFIG_HOME/autostart/pop3gui.desktop`` (default ``~/.config/autostart``)."""

    @property
    def path(self) -> Path:
        config_home = os.environ.get("XDG_CONFIG_HOME") or ""
        base = Path(config_home) if os.path.isabs(config_home) else Path.home() / ".config"
        return base / "autostart" / f"{ENTRY_NAME}.desktop"

    def enable(self, command: list[str]) -> None:
        text = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=POP3 Connector\n"
            "Comment=Retrieve ISP POP3 mailboxes into the office mail server (tray icon)\n"
            f"Exec={_desktop_exec(command)}\n"
            "Icon=pop3gui\n"
            "Terminal=false\n"
            "Categories=Network;Email;\n"
            "X-GNOME-Autostart-enabled=true\n"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".desktop.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)

    def enabled(self) -> bool:
        if not self.path.is_file():
            return False
        text = self.path.read_text(encoding="utf-8", errors="replace")
        return "Hidden=true" not in text and "X-GNOME-Autostart-enabled=false" not in text

    def location(self) -> str:
        return str(self.path)


class WindowsRunKey:  # pragma: no cover - Windows only, untested here
    """``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``, value ``pop3gui``."""

    def enable(self, command: list[str]) -> None:
        import subprocess

        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, ENTRY_NAME, 0, winreg.REG_SZ, subprocess.list2cmdline(command))

    def disable(self) -> None:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, ENTRY_NAME)
        except FileNotFoundError:
            pass

    def enabled(self) -> bool:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_QUERY_VALUE) as key:
                winreg.QueryValueEx(key, ENTRY_NAME)
            return True
        except FileNotFoundError:
            return False

    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{ENTRY_NAME}"


class MacLaunchAgent:  # pragma: no cover - macOS only, untested here
    """``~/Library/LaunchAgents/org.pop3gui.tray.plist`` (loaded at the next login)."""

    @property
    def path(self) -> Path:
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def enable(self, command: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"Label": LAUNCH_AGENT_LABEL, "ProgramArguments": command, "RunAtLoad": True,
                "ProcessType": "Interactive"}
        tmp = self.path.with_suffix(".plist.tmp")
        tmp.write_bytes(plistlib.dumps(data))
        os.replace(tmp, self.path)

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)

    def enabled(self) -> bool:
        return self.path.is_file()

    def location(self) -> str:
        return str(self.path)


def _backend() -> _Backend:
    """The one platform-specific choice."""
    if sys.platform == "win32":  # pragma: no cover
        return WindowsRunKey()
    if sys.platform == "darwin":  # pragma: no cover
        return MacLaunchAgent()
    return XdgAutostart()


def enable_autostart(command: list[str] | None = None) -> str:
    """Start ``pop3gui tray`` with the desktop session; returns where the entry was written.

    Raises :class:`OSError` when the entry cannot be written.
    """
    backend = _backend()
    backend.enable(command or tray_command())
    return backend.location()


def disable_autostart() -> str:
    """Remove the entry (nothing happens when there is none); returns where it was."""
    backend = _backend()
    backend.disable()
    return backend.location()


def autostart_enabled() -> bool:
    try:
        return _backend().enabled()
    except OSError:
        return False


def autostart_location() -> str:
    return _backend().location()


__all__ = ["autostart_enabled", "autostart_location", "disable_autostart", "enable_autostart", "tray_command"]
