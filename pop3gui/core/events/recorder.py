"""The event bus of one process, wired to the two sinks that last: store and log file.

The runner, the window and the demo all keep every event in the SQLite store
(``pop3gui events``, the Events tab) and in the rotating log file; they add
their own live sinks (a terminal, the GUI bridge) to :attr:`EventRecorder.bus`.
"""

from __future__ import annotations

from types import TracebackType

from pop3gui.core.events.model import EventBus, Severity
from pop3gui.core.events.log import EventLog
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.paths import Paths


class EventRecorder:
    """Opens the store and the log under *paths* and subscribes them to a new bus.

    The log file keeps the events at or above *level* (``[logging] level``:
    "debug", "info", "warning" or "error"); the store keeps every event emitted.
    """

    def __init__(self, paths: Paths, level: str = "info") -> None:
        self.bus = EventBus()
        self.store = EventStore(paths.events_db)
        try:
            self.log = EventLog(paths.log_file, Severity[level.upper()])
        except BaseException:
            self.store.close()
            raise
        self.bus.subscribe(self.store)
        self.bus.subscribe(self.log)

    def close(self) -> None:
        self.store.close()
        self.log.close()

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
