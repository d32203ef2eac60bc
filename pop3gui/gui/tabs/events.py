"""The Events tab: the connector's event log, live, filterable and exportable.

The table shows the newest stored events and then every new event as the
engine emits it (batched every 100 ms by
:class:`~pop3gui.gui.event_model.EventTableModel`); scrolling up reads older
pages, and the filters are answered by the store, so a history of millions of
events opens and filters at once.  Selecting a row shows everything about the
event below the table, including the SMTP transcript of a failed delivery, in
a fixed-width font.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QLocale, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QFontDatabase, QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QSplitter, QTableView, QTextBrowser,
                               QToolButton, QVBoxLayout, QWidget)

from pop3gui.core.config.model import Config
from pop3gui.core.events.export import ExportError, export_store
from pop3gui.core.events.model import Event, Severity
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.event_model import (COL_ACCOUNT, COL_ID, COL_SEVERITY, COL_TIME, COUNT_CAP, EventFilterProxy,
                                     EventTableModel, severity_name)
from pop3gui.gui.icons import icon
from pop3gui.gui.search_index import SearchIndexBuilder

SEARCH_DELAY_MS = 200  # re-filter once typing pauses, not on every key
FETCH_MARGIN_ROWS = 50  # read the next older page when the view is this close to the top



def _detail_html(event: Event, tr: Any, mono_family: str) -> str:
    """The detail pane's rich text for one event (every value escaped)."""
    esc = html.escape
    who = f" &middot; {esc(event.account)}" if event.account else ""
    parts = [
        f"<p><b>{esc(event.text)}</b></p>",
        f"<p>{esc(f'{event.time.astimezone():%Y-%m-%d %H:%M:%S}')} &middot; {esc(severity_name(event.severity))}"
        f" &middot; {esc(tr('Event'))} {int(event.id)}{who}</p>",
    ]
    if event.subject or event.message_id or event.uid:
        parts.append(
            f"<p><b>{esc(tr('Message:'))}</b> {esc(event.subject or '-')}<br>"
            f"Message-ID {esc(event.message_id or '-')} &middot; UIDL {esc(event.uid or '-')}</p>")
    facts = [(tr("Recipient:"), event.recipient), (tr("Server reply:"), str(event.reply or "")),
             (tr("Diagnosis:"), str(event.diagnosis or "")), (tr("Outcome:"), str(event.outcome or ""))]
    shown = [f"<b>{esc(label)}</b> {esc(value)}" for label, value in facts if value]
    if shown:
        parts.append("<p>" + "<br>".join(shown) + "</p>")
    if event.cause:
        parts.append(f"<p><b>{esc(tr('Cause:'))}</b> {esc(event.cause)}</p>")
    if event.fix:
        parts.append(f"<p><b>{esc(tr('Fix:'))}</b> {esc(event.fix)}</p>")
    if event.transcript:
        parts.append(f"<p><b>{esc(tr('SMTP transcript:'))}</b></p>"
                     f"<pre style=\"font-family: '{esc(mono_family)}';\">{esc(event.transcript)}</pre>")
    return "\n".join(parts)


class EventsTab(QWidget):
    """Event log page: filters, the table, the selected event's details, Copy and Export."""

    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._stick_to_bottom = True
        self._shown_once = False
        self._mono_family = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()

        self.model = EventTableModel(controller.store, parent=self)
        self.proxy = EventFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        # --- filter row -----------------------------------------------------------
        self.severity_combo = QComboBox()
        for text, severity in ((self.tr("All"), Severity.DEBUG), (self.tr("Info and above"), Severity.INFO),
                               (self.tr("Warnings and errors"), Severity.WARNING),
                               (self.tr("Errors"), Severity.ERROR)):
            self.severity_combo.addItem(text, int(severity))
        severity_label = QLabel(self.tr("&Severity:"))
        severity_label.setBuddy(self.severity_combo)

        self.account_combo = QComboBox()
        self.account_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.account_combo.addItem(self.tr("All accounts"), "")
        account_label = QLabel(self.tr("&Account:"))
        account_label.setBuddy(self.account_combo)

        self.search_edit = QLineEdit()
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setPlaceholderText(self.tr("Text, cause, fix, subject or Message-ID"))
        search_label = QLabel(self.tr("Searc&h:"))
        search_label.setBuddy(self.search_edit)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_search)

        self.reset_button = QToolButton()
        self.reset_button.setIcon(icon("clear-filter"))
        self.reset_button.setToolTip(self.tr("Show all events (reset the filters)"))
        self.reset_button.setAccessibleName(self.tr("Reset filters"))
        self.reset_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        filters = QHBoxLayout()
        filters.addWidget(severity_label)
        filters.addWidget(self.severity_combo)
        filters.addSpacing(12)
        filters.addWidget(account_label)
        filters.addWidget(self.account_combo)
        filters.addSpacing(12)
        filters.addWidget(search_label)
        filters.addWidget(self.search_edit, 1)
        filters.addWidget(self.reset_button)

        # --- table ----------------------------------------------------------------
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setAccessibleName(self.tr("Events"))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setTabKeyNavigation(False)  # Tab leaves the table
        self.view.setWordWrap(False)
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setSortingEnabled(False)
        self.view.setIconSize(QSize(16, 16))
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        fm = self.view.fontMetrics()
        vheader = self.view.verticalHeader()
        vheader.hide()
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        row_height = max(fm.height() + 6, 20)
        vheader.setMinimumSectionSize(row_height)
        vheader.setDefaultSectionSize(row_height)
        hheader = self.view.horizontalHeader()
        hheader.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hheader.setStretchLastSection(True)
        hheader.setHighlightSections(False)
        hheader.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        pad = 24
        hheader.resizeSection(COL_TIME, fm.horizontalAdvance("2000-12-31 23:59:59") + pad)
        widest_severity = max(fm.horizontalAdvance(severity_name(s)) for s in Severity)
        hheader.resizeSection(COL_SEVERITY, widest_severity + 16 + pad + 6)
        hheader.resizeSection(COL_ID, max(fm.horizontalAdvance("0000"), fm.horizontalAdvance(self.tr("Id"))) + pad)
        hheader.resizeSection(COL_ACCOUNT, fm.horizontalAdvance("m" * 12) + pad)

        # --- details --------------------------------------------------------------
        self.detail = QTextBrowser()
        self.detail.setOpenLinks(False)
        self.detail.setTabChangesFocus(True)
        self.detail.document().setDefaultStyleSheet("p { margin-top: 0px; margin-bottom: 6px; }")
        self.detail.setPlaceholderText(self.tr("Select an event to see its cause, its fix and, for a "
                                               "delivery, the SMTP transcript."))
        self.detail.setAccessibleName(self.tr("Event details"))
        detail_label = QLabel(self.tr("&Details:"))
        detail_label.setBuddy(self.detail)
        detail_box = QWidget()
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.setContentsMargins(0, 4, 0, 0)
        detail_layout.addWidget(detail_label)
        detail_layout.addWidget(self.detail)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.view)
        splitter.addWidget(detail_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([300, 200])

        # --- buttons --------------------------------------------------------------
        self.count_label = QLabel()
        self.copy_button = QPushButton(icon("copy"), self.tr("&Copy"))
        self.copy_button.setToolTip(self.tr("Copy everything about the selected event"))
        self.copy_button.setAccessibleName(self.tr("Copy event"))
        self.export_button = QPushButton(icon("export"), self.tr("E&xport…"))
        self.export_button.setToolTip(self.tr("Save the events shown (with the filters) as CSV or JSON"))
        self.export_button.setAccessibleName(self.tr("Export events"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.count_label, 1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.export_button)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)

        for first, second in ((self.severity_combo, self.account_combo), (self.account_combo, self.search_edit),
                              (self.search_edit, self.reset_button), (self.reset_button, self.view),
                              (self.view, self.detail), (self.detail, self.copy_button),
                              (self.copy_button, self.export_button)):
            QWidget.setTabOrder(first, second)

        copy_action = QAction(self.tr("Copy"), self)
        copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        copy_action.triggered.connect(self.copy_selected)
        self.view.addAction(copy_action)

        # --- wiring ---------------------------------------------------------------
        self.severity_combo.currentIndexChanged.connect(self._severity_chosen)
        self.account_combo.currentIndexChanged.connect(self._account_chosen)
        self.search_edit.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_edit.returnPressed.connect(self.apply_search)
        self.reset_button.clicked.connect(self.reset_filters)
        self.copy_button.clicked.connect(self.copy_selected)
        self.export_button.clicked.connect(self.export)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.batch_about_to_be_added.connect(self._before_batch)
        self.model.batch_added.connect(self._after_batch)
        self.model.accounts_changed.connect(self.refresh_accounts)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self.model.counts_changed.connect(self._update_count)
        bar = self.view.verticalScrollBar()
        bar.valueChanged.connect(self._scrolled)
        bar.rangeChanged.connect(self._range_changed)
        self._keep_from_bottom: int | None = None  # after older rows come in at the top: stay on the same rows
        self._fill_timer = QTimer(self)  # reads on while the rows do not fill the view
        self._fill_timer.setSingleShot(True)
        self._fill_timer.setInterval(0)
        self._fill_timer.timeout.connect(self._scrolled)
        self.model.modelReset.connect(self._fill_timer.start)
        self.model.modelReset.connect(self._forget_kept_position)
        controller.config_saved.connect(self._config_saved)

        self.model.load_history()
        self.refresh_accounts()
        self._update_count()
        self._selection_changed()
        controller.bridge.new_event.connect(self.model.add)
        controller.run_finished.connect(self._run_finished)
        self.indexer = SearchIndexBuilder(controller.store, self)

    # --- filters ------------------------------------------------------------------

    def _severity_chosen(self, _index: int) -> None:
        self._refilter(lambda: self.proxy.set_min_severity(Severity(self.severity_combo.currentData())))

    def _account_chosen(self, _index: int) -> None:
        self._refilter(lambda: self.proxy.set_account(self.account_combo.currentData() or ""))

    def apply_search(self) -> None:
        """Filter by the search box now (typing applies it after a short pause)."""
        self._search_timer.stop()
        self._refilter(lambda: self.proxy.set_text(self.search_edit.text()))

    def _refilter(self, change: Callable[[], None]) -> None:
        """Apply a filter change, keeping the selected event selected if it is still shown.

        The model reloads its rows from the store; the selected event is found
        again by its seq (older rows are read down to it when it passes the filter).
        """
        selected = self.selected_event()
        self.view.selectionModel().clear()
        change()
        if selected is not None and selected.seq:
            row = self.model.reach(selected.seq)
            if row >= 0:
                self.view.selectRow(row)
        self._after_filter_change()

    def reset_filters(self) -> None:
        """Show every event: the three filters cleared, and the rows read once."""
        self._search_timer.stop()
        for widget in (self.severity_combo, self.account_combo, self.search_edit):
            widget.blockSignals(True)
        try:
            self.severity_combo.setCurrentIndex(0)
            self.account_combo.setCurrentIndex(0)
            self.search_edit.clear()
        finally:
            for widget in (self.severity_combo, self.account_combo, self.search_edit):
                widget.blockSignals(False)
        self._refilter(lambda: self.proxy.set_filters(Severity.DEBUG, "", ""))

    def _after_filter_change(self) -> None:
        self._update_count()
        current = self.view.selectionModel().selectedRows()
        if current:
            self.view.scrollTo(current[0], QAbstractItemView.ScrollHint.PositionAtCenter)
        else:
            self.view.scrollToBottom()
        self._selection_changed()

    def refresh_accounts(self) -> None:
        """Offer every configured account and every account seen in an event."""
        names = {a.name for a in self.controller.config.accounts} | self.model.accounts()
        wanted = sorted(names, key=str.casefold)
        have = [self.account_combo.itemData(i) for i in range(1, self.account_combo.count())]
        if have == wanted:
            return
        current = self.account_combo.currentData() or ""
        self.account_combo.blockSignals(True)
        try:
            while self.account_combo.count() > 1:
                self.account_combo.removeItem(1)
            for name in wanted:
                self.account_combo.addItem(name, name)
            self.account_combo.setCurrentIndex(max(0, self.account_combo.findData(current)))
        finally:
            self.account_combo.blockSignals(False)

    def _config_saved(self, _config: Config) -> None:
        self.refresh_accounts()

    # --- live rows ----------------------------------------------------------------

    def is_at_bottom(self) -> bool:
        bar = self.view.verticalScrollBar()
        return bar.value() >= bar.maximum()

    def _scrolled(self, _value: int = 0) -> None:
        """Near the top (or too few rows to scroll): read the next older page, keeping the rows in sight.

        A search the text index cannot answer comes in stretches; the next one is
        read from a zero timer, so the window stays responsive in between.
        """
        bar = self.view.verticalScrollBar()
        if bar.value() > FETCH_MARGIN_ROWS * self.view.verticalHeader().defaultSectionSize():
            return
        if not self.model.can_fetch_older() or self._keep_from_bottom is not None:
            return
        self._keep_from_bottom = bar.maximum() - bar.value()
        rows, maximum = self.model.rowCount(), bar.maximum()
        self.model.fetch_older()
        if self.model.rowCount() != rows:
            self.view.executeDelayedItemsLayout()  # the scroll bar's new range now (_range_changed keeps the rows)
        if bar.maximum() == maximum:  # nothing came, or it still fits the view: no range change will come
            self._keep_from_bottom = None
        if self.model.can_fetch_older():
            self._fill_timer.start()

    def _forget_kept_position(self) -> None:
        self._keep_from_bottom = None  # a reload shows other rows: the position kept for the old ones is void

    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self._keep_from_bottom is not None:
            keep, self._keep_from_bottom = self._keep_from_bottom, None
            self.view.verticalScrollBar().setValue(max(0, maximum - keep))

    def _before_batch(self) -> None:
        self._stick_to_bottom = self.is_at_bottom()

    def _after_batch(self, _count: int) -> None:
        if self._stick_to_bottom:
            self.view.scrollToBottom()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.view.scrollToBottom()  # newest events first in sight

    def _run_finished(self, _result: object) -> None:
        self.model.recount()  # the cycle's housekeeping may have removed old events

    def _update_count(self, *_args: object) -> None:
        locale = QLocale()
        total = self.model.total()
        shown, exact = self.model.matching()
        values = {"shown": locale.toString(shown), "total": locale.toString(total)}
        if exact and shown == total:
            self.count_label.setText(self.tr("Events: {total}").format(**values))
        elif exact:
            self.count_label.setText(self.tr("Events shown: {shown} of {total}").format(**values))
        elif shown >= COUNT_CAP:
            self.count_label.setText(self.tr("Events shown: more than {shown} of {total}").format(**values))
        else:  # a search without the text index, read in stretches
            self.count_label.setText(self.tr("Events shown: {shown} so far of {total}, searching…").format(**values))

    # --- selection, copy, export -------------------------------------------------------

    def selected_event(self) -> Event | None:
        rows = self.view.selectionModel().selectedRows()
        return self.proxy.event_at(rows[0].row()) if rows else None

    def _selection_changed(self, *_args: QItemSelection) -> None:
        event = self.selected_event()
        self.copy_button.setEnabled(event is not None)
        if event is None:
            self.detail.clear()
        else:
            self.detail.setHtml(_detail_html(event, self.tr, self._mono_family))

    def copy_selected(self) -> None:
        """Put the selected event's full text (with cause, fix and transcript) on the clipboard."""
        event = self.selected_event()
        if event is not None:
            QGuiApplication.clipboard().setText(event.full_text())

    def export(self) -> None:
        """Ask for a file and save the events shown there as CSV or JSON."""
        csv_filter = self.tr("CSV files (*.csv)")
        json_filter = self.tr("JSON files (*.json)")
        start = str(Path.home() / "pop3gui-events.csv")
        name, chosen = QFileDialog.getSaveFileName(self, self.tr("Export events"), start,
                                                   f"{csv_filter};;{json_filter}")
        if not name:
            return
        path = Path(name)
        if path.suffix.lower() not in (".csv", ".json"):
            path = path.with_name(path.name + (".json" if chosen == json_filter else ".csv"))
        asyncio.ensure_future(self.export_to(path))

    async def export_to(self, path: Path) -> bool:
        """Save the filtered events to ``path``; on failure explain it in a message box.

        The file is written by a worker thread on a connection of its own: a
        long history takes seconds, and this window's loop also runs the
        connector.  Export is unavailable meanwhile.
        """
        store = self.controller.store
        store.write_pending()  # what this window emitted so far, unless the lock is taken just now
        flt = self.model.filter
        label = self.export_button.text()
        self.export_button.setEnabled(False)
        self.export_button.setText(self.tr("Exporting…"))
        try:
            await asyncio.to_thread(export_store, store.path, flt, path)
        except ExportError as exc:
            QMessageBox.warning(
                self, self.tr("Export failed"),
                self.tr("The events could not be saved to {path}.").format(path=exc.path) + "\n\n"
                + self.tr("Reason: {reason}").format(reason=exc.reason) + "\n\n"
                + self.tr("Choose a folder you can write to (for example your Documents folder) and "
                          "check that the file is not open in another program."))
            return False
        finally:
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self.export_button.setText(label)
                self.export_button.setEnabled(True)
        return True
