"""Icons from the shipped SVG files (``resources/icons``), cached by name."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon

from pop3gui.core.events.model import Severity


@cache
def icon(name: str) -> QIcon:
    """The icon ``resources/icons/<name>.svg``; an empty icon if the file is missing."""
    path = resources.files("pop3gui.resources") / "icons" / f"{name}.svg"
    with resources.as_file(path) as file:
        return QIcon(str(file)) if file.exists() else QIcon()


def severity_icon(severity: Severity) -> QIcon:
    return icon({Severity.DEBUG: "debug", Severity.INFO: "info", Severity.WARNING: "warning",
                 Severity.ERROR: "error"}[severity])
