"""Turns core events (plain callbacks) into a Qt signal the widgets connect to."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from pop3gui.core.events.model import Event


class EventBridge(QObject):
    """Subscribe an instance to an :class:`~pop3gui.core.events.model.EventBus`."""

    event = Signal(object)  # pop3gui.core.events.model.Event

    def __call__(self, event: Event) -> None:
        self.event.emit(event)
