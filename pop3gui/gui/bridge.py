"""The one place where the engine's plain callbacks become Qt signals.

The engine (``core/``) knows nothing of Qt: it emits events on its bus and
reports status to a :class:`~pop3gui.core.engine.status.StatusObserver`.  The
bridge is both a bus subscriber and that observer, and re-emits everything as
signals the widgets connect to; calls arrive on the qasync loop, which is the
Qt thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from pop3gui.core.engine.status import AccountStatus, CycleResult
from pop3gui.core.events.model import Event


class EngineBridge(QObject):
    """Subscribe an instance to an EventBus and pass it to the Connector as its observer."""

    new_event = Signal(object)  # pop3gui.core.events.model.Event
    account_status = Signal(object)  # pop3gui.core.engine.status.AccountStatus
    cycle_finished = Signal(object)  # pop3gui.core.engine.status.CycleResult

    def __call__(self, event: Event) -> None:
        self.new_event.emit(event)

    def on_account_status(self, status: AccountStatus) -> None:
        self.account_status.emit(status)

    def on_cycle_finished(self, result: CycleResult) -> None:
        self.cycle_finished.emit(result)
