"""What every editing page of the properties window provides.

The window keeps one *draft* :class:`~pop3gui.core.config.model.Config`.  A page
shows its part of the draft (:meth:`ConfigTab.load`), writes the user's edits
back into a copy (:meth:`ConfigTab.apply`) and lists what is invalid right
now (:meth:`ConfigTab.problems`), so the file on disk is only ever written
whole and valid.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QWidget

from pop3gui.core.config.model import Config


class ConfigTab(QWidget):
    edited = Signal()  # the user changed something on this page

    def load(self, config: Config) -> None:
        """Show ``config``'s values (replaces whatever the page shows)."""
        raise NotImplementedError

    def apply(self, config: Config) -> Config:
        """``config`` with this page's values; only called when :meth:`problems` is empty."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Invalid inputs on this page, as shown next to their fields."""
        return []

    def has_pending_secret(self) -> bool:
        """A typed password waits to go to the keyring on save (it is not in the config)."""
        return False

    def draft_changed(self, config: Config) -> None:
        """Another page changed the draft (e.g. the policy page shows new warnings)."""


def field_error_label() -> QLabel:
    """A red, word-wrapped label shown under a field when its value is invalid."""
    label = QLabel()
    label.setObjectName("fieldError")
    label.setStyleSheet("color: #b00020;")
    label.setWordWrap(True)
    label.hide()
    return label


def show_error(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))
