"""Fills the text index of an event store of an earlier release while the window is idle."""

from __future__ import annotations

import logging
import sqlite3
import time

from PySide6.QtCore import QObject, QTimer, Signal

from pop3gui.core.events.store import EventStore

__all__ = ["INDEX_STEP_MS", "SearchIndexBuilder"]

_log = logging.getLogger(__name__)
INDEX_STEP_ROWS = 500  # events added to the text index in the first step; then sized to take INDEX_STEP_MS
INDEX_STEP_MS = 10
INDEX_PAUSE_MS = 10  # between steps


class SearchIndexBuilder(QObject):
    """Fills the text index of a store of an earlier release while the window is idle, in short steps.

    On the window's own connection and thread, between the engine's events: a
    step is one short transaction, sized to take about ``INDEX_STEP_MS``, so the
    loop is never held longer (a worker thread with its own connection was tried:
    the engine's appends then wait for its write lock in SQLite's busy sleeps of
    up to 100 ms).  Until it is done, searches read the older events without the
    index.  Nothing to do for a new store.
    """

    finished = Signal()

    def __init__(self, store: EventStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.rows = INDEX_STEP_ROWS
        self._timer = QTimer(self)
        self._timer.setInterval(INDEX_PAUSE_MS)
        self._timer.timeout.connect(self.step)
        if not store.search_index_complete:
            self._timer.start()

    def running(self) -> bool:
        return self._timer.isActive()

    def step(self) -> None:
        if self._store.closed:
            self._timer.stop()
            return
        started = time.perf_counter()
        try:
            done = self._store.build_search_index(self.rows, busy_ms=0)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # another process is writing: the next tick
                return
            _log.warning("the text index of %s could not be built now; searches read the events instead",
                         self._store.path, exc_info=True)
            self._timer.stop()
            return
        except sqlite3.Error:  # a full disk, say: searches still work without the index
            _log.warning("the text index of %s could not be built now; searches read the events instead",
                         self._store.path, exc_info=True)
            self._timer.stop()
            return
        took = (time.perf_counter() - started) * 1000
        if took < INDEX_STEP_MS / 2:
            self.rows = min(self.rows * 2, 20_000)
        elif took > INDEX_STEP_MS:
            self.rows = max(self.rows // 2, 50)
        if done:
            self._timer.stop()
            self.finished.emit()
