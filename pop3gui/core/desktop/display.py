"""Whether this session has a screen to draw on.

The window commands ask before loading Qt, which otherwise aborts the process
with a plugin error an admin cannot act on.  This is the one platform-specific
question here: on X11/Wayland systems a display is named in the environment;
Windows and macOS sessions that run the program always have one.
"""

from __future__ import annotations

import os
import sys

from pop3gui.core.errors import Pop3guiError


def has_display() -> bool:
    """True when a window can be shown (or Qt was told explicitly how to draw)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith(("win", "cygwin", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def no_display_error(what: str) -> Pop3guiError:
    return Pop3guiError(
        f"cannot open {what}: this session has no screen",
        cause="Neither DISPLAY nor WAYLAND_DISPLAY is set (for instance an SSH login or a server without a "
        "desktop).",
        fix="Run it from a desktop session (or with `ssh -X`), or use the headless commands: "
        "`pop3gui check`, `pop3gui run`, `pop3gui demo --headless --once`.",
    )
