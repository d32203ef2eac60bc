"""The event log as a lazy Qt table model over the event store, and the proxy the Events tab uses.

The store can hold millions of events, so the model holds a window of them:
the newest page that passes the filters (severity, account, text: answered by
SQLite, on its indexes and its text index), oldest at the top and newest at the
bottom as the tab has always shown them.  Scrolling up fetches older pages
(``fetch_older``, rows inserted at the top); live events are queued and read
back from the store once per 100 ms batch, after the newest seq already shown,
and appended in one ``beginInsertRows`` (never a model reset on append).  A
filter change reloads the window (one query).  ``data()`` stays cheap by
formatting each row's cells once, the first time the view asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from PySide6.QtCore import (QAbstractTableModel, QCoreApplication, QIdentityProxyModel, QModelIndex, QObject,
                            QPersistentModelIndex, Qt, QTimer, Signal)

from pop3gui.core.events.model import Event, Severity
from pop3gui.core.events.search import SEARCH_SCAN_ROWS, EventFilter
from pop3gui.core.events.store import EventStore
from pop3gui.gui.icons import severity_icon

EventRole = Qt.ItemDataRole.UserRole + 1  # the core Event
SeverityRole = Qt.ItemDataRole.UserRole + 2  # int(Severity)
AccountRole = Qt.ItemDataRole.UserRole + 3  # account name, "" for none

COLUMNS = ("time", "severity", "id", "account", "text")
COL_TIME, COL_SEVERITY, COL_ID, COL_ACCOUNT, COL_TEXT = range(len(COLUMNS))

BATCH_INTERVAL_MS = 100
DEFAULT_MAX_ROWS = 200_000  # rows held at most; scrolling further back is for filters, export or the CLI
PAGE_ROWS = 500  # rows read per fetch: the newest on opening, then as the view scrolls up
COUNT_CAP = 10_000  # matching events are counted up to this ("more than 10,000")
REACH_ROWS = 20_000  # rows read at most to keep a selected event in sight across a filter change

_Index = QModelIndex | QPersistentModelIndex


def severity_name(severity: Severity) -> str:
    """The translated, user-facing name of a severity."""
    names = {
        Severity.DEBUG: QCoreApplication.translate("EventTableModel", "Debug"),
        Severity.INFO: QCoreApplication.translate("EventTableModel", "Info"),
        Severity.WARNING: QCoreApplication.translate("EventTableModel", "Warning"),
        Severity.ERROR: QCoreApplication.translate("EventTableModel", "Error"),
    }
    return names[severity]


class _Row:
    """One event and, once asked for, its formatted cells."""

    __slots__ = ("event", "cells")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.cells: tuple[str, str, str, str, str] | None = None


class EventTableModel(QAbstractTableModel):
    """The newest events that pass the filter, oldest of them first; at most ``max_rows`` of them."""

    batch_about_to_be_added = Signal()  # before a flush removes/inserts rows
    batch_added = Signal(int)  # number of rows appended by the flush
    accounts_changed = Signal()  # an event named an account not seen before
    counts_changed = Signal()  # total() or matching() changed

    def __init__(self, store: EventStore | None = None, *, max_rows: int = DEFAULT_MAX_ROWS,
                 page_rows: int = PAGE_ROWS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if max_rows < 1 or page_rows < 1:
            raise ValueError("max_rows and page_rows must be at least 1")
        self._store = store
        self.max_rows = max_rows
        self.page_rows = page_rows
        self.scan_rows = SEARCH_SCAN_ROWS  # events a search without the text index reads per call
        self._filter = EventFilter()
        self._rows: list[_Row] = []
        self._older: int | None = None  # the seq the next older page starts before; None: nothing older
        self._top = 0  # the newest seq read from the store (shown or not)
        self._total = 0  # events in the store
        self._matching = (0, True)  # events passing the filter (at least), and whether exactly
        self._pending: list[Event] = []
        self._accounts: set[str] = set()
        self._severity_names = {s: severity_name(s) for s in Severity}
        self._severity_icons = {s: severity_icon(s) for s in Severity}
        self._headers = (self.tr("Time"), self.tr("Severity"), self.tr("Id"), self.tr("Account"), self.tr("Text"))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(BATCH_INTERVAL_MS)
        self._timer.timeout.connect(self.flush)

    # --- filling ----------------------------------------------------------------

    @property
    def filter(self) -> EventFilter:
        return self._filter

    def set_filter(self, flt: EventFilter) -> bool:
        """Show the newest events that pass *flt* (one query); False when it is the filter already shown."""
        if flt == self._filter:
            return False
        self._filter = flt
        self.load_history()
        return True

    def load_history(self, limit: int | None = None) -> int:
        """Replace the rows with the newest ``limit`` (default a page) events that pass the filter."""
        self._timer.stop()
        self._pending.clear()
        wanted = min(limit if limit is not None else self.page_rows, self.max_rows)
        events: list[Event] = []
        older: int | None = None
        if self._store is not None:
            top = self._store.latest(1)
            self._top = top[0].seq if top else 0
            # One call: a search the text index cannot answer reads a bounded stretch and may come back
            # short; the view asks for the rest (fetch_older) a stretch at a time, between other work.
            # Up to _top only: what another process stores meanwhile comes with the next flush, once.
            events, older = self._store.page(self._filter, before_seq=self._top + 1, limit=wanted,
                                             scan=self.scan_rows)
            self._read_counts()
            accounts = set(self._store.accounts())
        else:
            accounts = set()
        self.beginResetModel()
        self._rows = [_Row(e) for e in reversed(events)]
        self._older = older
        self.endResetModel()
        self._note_accounts(accounts)
        self.counts_changed.emit()
        return len(events)

    def _read_counts(self) -> None:
        """Events in the store and events passing the filter, up to the newest seq read."""
        assert self._store is not None
        self._total = self._store.count(upto=self._top)
        if self._filter == EventFilter():
            self._matching = (self._total, True)
        else:
            self._matching = self._store.count_at_least(self._filter, COUNT_CAP, self.scan_rows, upto=self._top)

    def recount(self) -> None:
        """Read the counts again: retention removes old events (here or in another process) after a cycle.

        A count a search is still growing stretch by stretch ("so far") is left
        to that search; read again, it would start over from its first stretch.
        """
        if self._store is None or self._store.closed:
            return
        growing = self._matching
        self._read_counts()
        if not growing[1]:
            self._matching = growing
        self.counts_changed.emit()

    def can_fetch_older(self) -> bool:
        """Whether older events pass the filter and there is room for them."""
        return (self._older is not None and self._store is not None and not self._store.closed
                and len(self._rows) < self.max_rows)

    def fetch_older(self, limit: int | None = None) -> int:
        """Read the next older page and insert it at the top; returns how many rows came."""
        if not self.can_fetch_older():
            return 0
        assert self._store is not None
        wanted = min(limit or self.page_rows, self.max_rows - len(self._rows))
        events, self._older = self._store.page(self._filter, before_seq=self._older, limit=wanted,
                                               scan=self.scan_rows)
        if events:
            self.beginInsertRows(QModelIndex(), 0, len(events) - 1)
            self._rows[:0] = [_Row(e) for e in reversed(events)]
            self.endInsertRows()
        count, exact = self._matching
        if not exact and (len(self._rows) > count or self._older is None):
            # A count that was a lower bound (a search read in stretches) grows with what was found.
            self._matching = (len(self._rows), self._older is None and len(self._rows) < self.max_rows)
            self.counts_changed.emit()
        return len(events)

    def reach(self, seq: int, most: int = REACH_ROWS) -> int:
        """The row of the event *seq*, reading older rows down to it (*most* of them at most) when it passes
        the filter; -1 if it does not, or is further back than that."""
        row = self.row_of(seq)
        if row >= 0 or self._store is None or not self._rows or seq >= self._rows[0].event.seq:
            return row
        if not self._store.passes(self._filter, seq):
            return -1
        read = 0
        while self.can_fetch_older() and self._older is not None and self._older > seq and read < most:
            before = self._older
            read += self.fetch_older(min(max(self.page_rows, 5000), most - read))
            if self._older == before:
                break
        return self.row_of(seq)

    def row_of(self, seq: int) -> int:
        """The row showing the event *seq*, or -1 (rows are in seq order: a binary search)."""
        lo, hi = 0, len(self._rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._rows[mid].event.seq < seq:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self._rows) and self._rows[lo].event.seq == seq else -1

    def add(self, event: Event) -> None:
        """Note a live event; it is shown with the others at the next batch (within 100 ms)."""
        self._pending.append(event)
        if not self._timer.isActive():
            self._timer.start()

    def pending(self) -> int:
        """Events noted and not yet shown."""
        return len(self._pending)

    def flush(self) -> None:
        """Show the new events now: one insertion, preceded by at most one removal of old rows.

        With a store, the new events are read back from it (they carry their seq
        there, and events another process stored since show up too); without one,
        the noted events are filtered here.
        """
        self._timer.stop()
        noted, self._pending = self._pending, []
        if self._store is not None and self._store.closed:  # the window is closing
            return
        if self._store is not None:
            batch, new_total = self._read_new()
            if self._store.waiting():  # the store's lock was taken: read again once they are written
                self._timer.start()
        else:
            batch = [e for e in noted if self._filter.matches(e)]
            new_total = len(noted)
        if new_total:
            self._total += new_total
            count, exact = self._matching
            self._matching = (count + len(batch), exact) if exact else self._matching
            self.counts_changed.emit()
        if not batch:
            return
        if len(batch) > self.max_rows:
            batch = batch[-self.max_rows:]
        self.batch_about_to_be_added.emit()
        excess = len(self._rows) + len(batch) - self.max_rows
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._rows[:excess]
            self.endRemoveRows()
            self._older = self._rows[0].event.seq if self._rows else batch[0].seq
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
        self._rows.extend(_Row(e) for e in batch)
        self.endInsertRows()
        self._note_accounts({e.account for e in batch})
        self.batch_added.emit(len(batch))

    def _read_new(self) -> tuple[list[Event], int]:
        """The stored events after the newest read that pass the filter, oldest first; and how many were stored."""
        assert self._store is not None
        top = self._store.latest(1)
        newest = top[0].seq if top else 0
        if newest <= self._top:
            return [], 0
        events, _ = self._store.page(self._filter, before_seq=newest + 1, after_seq=self._top, limit=self.max_rows)
        stored = self._store.count_after(self._top, upto=newest)
        self._top = newest
        return events[::-1], stored

    def clear(self) -> None:
        """Forget the shown rows and the queue (the store keeps them)."""
        self._timer.stop()
        self._pending.clear()
        self.beginResetModel()
        self._rows = []
        self._older = None
        self.endResetModel()

    def _note_accounts(self, accounts: set[str]) -> None:
        before = len(self._accounts)
        self._accounts.update(a for a in accounts if a)
        if len(self._accounts) != before:
            self.accounts_changed.emit()

    # --- reading ----------------------------------------------------------------

    def accounts(self) -> set[str]:
        """Every account named by a stored event (and a live one)."""
        return set(self._accounts)

    def total(self) -> int:
        """Events in the store."""
        return self._total if self._store is not None else len(self._rows)

    def matching(self) -> tuple[int, bool]:
        """Events that pass the filter (up to ``COUNT_CAP``), and whether that number is exact."""
        return self._matching if self._store is not None else (len(self._rows), True)

    def event_at(self, row: int) -> Event:
        return self._rows[row].event

    def events(self) -> Iterator[Event]:
        """The rows held, in order."""
        return (r.event for r in self._rows)

    def matching_events(self) -> Iterator[Event]:
        """Every event that passes the filter, oldest first, read from the store in batches (the events Export
        writes; the tab's Export reads them on a connection of its own, ``export_store``)."""
        if self._store is None:
            return self.events()
        return self._store.matching(self._filter)

    def _cells(self, r: _Row) -> tuple[str, str, str, str, str]:
        if r.cells is None:
            e = r.event
            r.cells = (f"{e.time.astimezone():%Y-%m-%d %H:%M:%S}", self._severity_names[e.severity],
                       str(int(e.id)), e.account, e.text)
        return r.cells

    # --- QAbstractItemModel -------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells(r)[column]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._severity_icons[r.event.severity] if column == COL_SEVERITY else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r.event)
        if role == EventRole:
            return r.event
        if role == SeverityRole:
            return int(r.event.severity)
        if role == AccountRole:
            return r.event.account
        return None

    def _tooltip(self, e: Event) -> str:
        lines = [e.text]
        if e.cause:
            lines.append(self.tr("Cause: %s") % e.cause)
        if e.fix:
            lines.append(self.tr("Fix: %s") % e.fix)
        return "\n".join(lines)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(COLUMNS):
            return self._headers[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class EventFilterProxy(QIdentityProxyModel):
    """The Events tab's filters: severity and above, one account, a text; answered by the store.

    The rows are the source's own (an identity proxy); each setter hands the
    changed filter to the :class:`EventTableModel`, which reloads its window
    from SQLite, only when the value really changed.  The text is a
    case-insensitive substring of text, cause, fix, subject or Message-ID.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._events: EventTableModel | None = None

    def setSourceModel(self, model: Any) -> None:  # noqa: N802 (Qt name)
        if not isinstance(model, EventTableModel):
            raise TypeError("EventFilterProxy filters an EventTableModel")
        self._events = model
        super().setSourceModel(model)

    def _model(self) -> EventTableModel:
        if self._events is None:
            raise RuntimeError("EventFilterProxy has no source model")
        return self._events

    @property
    def min_severity(self) -> Severity:
        return self._model().filter.min_severity or Severity.DEBUG

    @property
    def account(self) -> str:
        return self._model().filter.account or ""

    @property
    def text(self) -> str:
        return self._model().filter.text

    def set_min_severity(self, severity: Severity) -> None:
        severity = Severity(severity)
        model = self._model()
        model.set_filter(replace(model.filter, min_severity=None if severity <= min(Severity) else severity))

    def set_account(self, account: str) -> None:
        model = self._model()
        model.set_filter(replace(model.filter, account=account or None))

    def set_text(self, text: str) -> None:
        """Case-insensitive substring over text, cause, fix, subject and Message-ID."""
        model = self._model()
        model.set_filter(replace(model.filter, text=text.strip()))

    def set_filters(self, min_severity: Severity, account: str, text: str) -> None:
        """All three at once: one reload."""
        model = self._model()
        severity = Severity(min_severity)
        model.set_filter(replace(model.filter, min_severity=None if severity <= min(Severity) else severity,
                                 account=account or None, text=text.strip()))

    def events(self) -> list[Event]:
        """Every event that passes the filters, oldest first, from the store (as Export writes them)."""
        return list(self._model().matching_events())

    def event_at(self, row: int) -> Event:
        return self._model().event_at(row)
