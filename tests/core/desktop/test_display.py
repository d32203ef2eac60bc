"""Whether a window can be shown: the environment decides on X11/Wayland systems."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pop3gui.core.desktop import display
from pop3gui.core.desktop.display import has_display, no_display_error
from pop3gui.core.errors import Pop3guiError

NAMES = ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")


def session(monkeypatch: pytest.MonkeyPatch, platform: str, **env: str) -> None:
    """A session on *platform* whose environment names only *env* of the display variables."""
    monkeypatch.setattr(display, "sys", SimpleNamespace(platform=platform))
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("env, shown", [
    ({}, False),
    ({"DISPLAY": ":0"}, True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, True),
    ({"DISPLAY": "", "WAYLAND_DISPLAY": ""}, False),
    ({"QT_QPA_PLATFORM": "offscreen"}, True),
    ({"QT_QPA_PLATFORM": ""}, False),
], ids=["nothing", "x11", "wayland", "empty", "qt-told", "qt-empty"])
def test_on_linux_the_environment_names_the_display(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                    shown: bool) -> None:
    session(monkeypatch, "linux", **env)
    assert has_display() is shown


@pytest.mark.parametrize("platform", ["win32", "cygwin", "darwin"])
def test_windows_and_macos_sessions_always_have_a_display(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    session(monkeypatch, platform)
    assert has_display() is True


def test_other_unix_systems_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    session(monkeypatch, "freebsd14")
    assert has_display() is False
    monkeypatch.setenv("DISPLAY", "localhost:10.0")
    assert has_display() is True


def test_the_error_without_a_display_says_why_and_what_to_run_instead() -> None:
    error = no_display_error("the window")
    assert isinstance(error, Pop3guiError)
    assert str(error) == "cannot open the window: this session has no screen"
    assert "DISPLAY" in error.cause and "WAYLAND_DISPLAY" in error.cause and "SSH" in error.cause
    for command in ("ssh -X", "pop3gui check", "pop3gui run", "pop3gui demo --headless --once"):
        assert command in error.fix
