"""The commands that open windows: the properties window (no command) and ``pop3gui tray``.

The GUI package is imported only here, after checking for a screen, so the
headless commands start without Qt.
"""

from __future__ import annotations

import argparse

from pop3gui.core.desktop.display import has_display, no_display_error
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tray = sub.add_parser(
        "tray", help="run in the system tray: retrieve on the schedule in the background",
        description="Run the connector in the background with a system tray icon (Retrieve Now, Pause, the "
        "properties window, notifications of problems). Only one instance runs per state folder: a second "
        "`pop3gui` or `pop3gui tray` opens the running one's window. Without a system tray, the properties "
        "window stays open instead.")
    tray.set_defaults(handler=open_tray)


def open_window(paths: Paths, args: argparse.Namespace) -> int:
    """Without a command: the properties window."""
    if not has_display():
        raise no_display_error("the properties window")
    from pop3gui.gui.app import run_window

    result: int = run_window(paths)
    return result


def open_tray(paths: Paths, args: argparse.Namespace) -> int:
    """``pop3gui tray``: the background runner with its tray icon."""
    if not has_display():
        raise no_display_error("the tray runner")
    from pop3gui.gui.app import run_tray

    result: int = run_tray(paths)
    return result
