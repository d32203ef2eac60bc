"""Quarantine: messages nobody would accept, kept until the admin acts.

Resubmit runs resolution and submission again (after fixing a policy, say);
Export saves the .eml; Delete asks first, because it is the last copy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.errors import Pop3guiError, StateError
from pop3gui.core.state import quarantine_ops
from pop3gui.core.state.spool import Quarantine, QuarantineRecord
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.quarantine_model import QuarantineModel


class QuarantineTab(QWidget):
    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = QuarantineModel(Quarantine(controller.paths.quarantine_dir), self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)  # the date
        self.view.verticalHeader().hide()
        self.view.setAccessibleName(self.tr("Quarantined messages"))
        self.view.doubleClicked.connect(self.view_headers)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)

        self.headers_button = QPushButton(self.tr("View &Headers…"))
        self.resubmit_button = QPushButton(self.tr("&Resubmit"))
        self.export_button = QPushButton(self.tr("E&xport .eml…"))
        self.delete_button = QPushButton(self.tr("De&lete…"))
        self.refresh_button = QPushButton(self.tr("Re&fresh"))
        self.headers_button.clicked.connect(self.view_headers)
        self.resubmit_button.clicked.connect(self._resubmit_clicked)
        self.export_button.clicked.connect(self._export_clicked)
        self.delete_button.clicked.connect(self._delete_clicked)
        self.refresh_button.clicked.connect(self.model.refresh)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.headers_dialog: QDialog | None = None  # the last of each window opened, for keyboard and tests
        self.delete_box: QMessageBox | None = None
        self.message_box: QMessageBox | None = None

        buttons = QHBoxLayout()
        for button in (self.headers_button, self.resubmit_button, self.export_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch()
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("Messages the connector could deliver nowhere. They are deleted on the POP3 "
                               "server, so this is their only copy until you resubmit or export them."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        controller.run_finished.connect(lambda *_: self.model.refresh())
        self.model.modelReset.connect(self._update_buttons)
        self._update_buttons()

    def selected(self) -> QuarantineRecord | None:
        rows = self.view.selectionModel().selectedRows()
        return self.model.record(rows[0].row()) if rows else None

    def _update_buttons(self, *_: object) -> None:
        has = self.selected() is not None
        for button in (self.headers_button, self.resubmit_button, self.export_button, self.delete_button):
            button.setEnabled(has)

    # --- actions ------------------------------------------------------------------

    def _gone(self, record: QuarantineRecord) -> bool:
        """Whether the message left quarantine meanwhile (resubmitted, deleted elsewhere): said, list refreshed."""
        if self.model.quarantine.message_path(record.id).exists():
            return False
        self.status.setText(self.tr("\"{subject}\" is no longer in quarantine: it was resubmitted or deleted "
                                    "meanwhile (perhaps by another window or the tray). The list is refreshed.")
                            .format(subject=record.subject))
        self.model.refresh()
        return True

    def _warn(self, title: str, text: str) -> QMessageBox:
        """A warning that does not block the window (the engine keeps running behind it)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        self.message_box = box
        box.open()
        return box

    def view_headers(self, *_: object) -> QDialog | None:
        record = self.selected()
        if record is None or self._gone(record):
            return None
        try:
            headers = quarantine_ops.headers(quarantine_ops.entry(self.model.quarantine, record.id))
            text = "".join(f"{k}: {v}\n" for k, v in headers.items())
        except StateError as exc:
            text = exc.explain() + "\n"
        dialog = QDialog(self)
        dialog.setWindowTitle(self.tr("Headers of \"{subject}\"").format(subject=record.subject))
        body = QPlainTextEdit()
        body.setReadOnly(True)
        body.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        body.setPlainText(text + "\n" + self.tr("Why it is here: {reason}\nCause: {cause}\nFix: {fix}").format(
            reason=record.reason, cause=record.cause, fix=record.fix))
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(body)
        layout.addWidget(close)
        dialog.resize(720, 480)
        self.headers_dialog = dialog
        dialog.open()
        return dialog

    def _resubmit_clicked(self) -> None:
        record = self.selected()
        if record is not None:
            asyncio.ensure_future(self.resubmit(record.id))

    async def resubmit(self, record_id: str) -> str:
        """Resolve and submit again; the outcome is shown and the list refreshed."""
        self.resubmit_button.setEnabled(False)
        self.status.setText(self.tr("Resubmitting…"))
        try:
            outcome = await self.controller.resubmit(record_id)
        except Pop3guiError as exc:
            outcome = exc.explain()
        self.status.setText(outcome)
        self.model.refresh()
        return outcome

    def _export_clicked(self) -> None:
        record = self.selected()
        if record is None or self._gone(record):
            return
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Export message"), f"{record.id}.eml",
                                              self.tr("E-mail messages (*.eml)"))
        if name:
            self.export(record.id, Path(name))

    def export(self, record_id: str, target: Path) -> bool:
        """Copy the message to *target*; the quarantined copy stays whatever happens (a failed export leaves
        no half message under the chosen name: see :func:`quarantine_ops.export`)."""
        found = quarantine_ops.entry(self.model.quarantine, record_id)
        if found.message is None:
            self.status.setText(self.tr("This message is no longer in quarantine: it was resubmitted or deleted "
                                        "meanwhile. The list is refreshed."))
            self.model.refresh()
            return False
        try:
            quarantine_ops.export(found, target)
        except StateError as exc:
            self._warn(self.tr("Export failed"), exc.explain())
            self.status.setText(self.tr("Export to {path} failed ({error}); the message is still in quarantine.")
                                .format(path=target, error=exc.message))
            return False
        self.status.setText(self.tr("Exported to {path}. The message is still in quarantine; delete it there when "
                                    "you no longer need it.").format(path=target))
        return True

    def _delete_clicked(self) -> QMessageBox | None:
        """Ask first: the quarantined file is the message's only copy."""
        record = self.selected()
        if record is None or self._gone(record):
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question, self.tr("Delete quarantined message"),
            self.tr("Delete \"{subject}\" for good? This is the message's only copy; export it first to keep "
                    "it.").format(subject=record.subject),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.finished.connect(lambda _result: self.delete(record.id) if box.clickedButton() is yes else None)
        self.delete_box = box
        box.open()
        return box

    def delete(self, record_id: str) -> bool:
        """Delete for good (asked first by the button); the event names the message, as the command's does."""
        found = quarantine_ops.entry(self.model.quarantine, record_id)  # its record, unless unreadable or gone
        try:
            quarantine_ops.remove(self.model.quarantine, found)
        except StateError as exc:
            self._warn(self.tr("Delete failed"), exc.explain())
            self.model.refresh()
            return False
        self.controller.bus.emit(quarantine_ops.deleted_event(found, "the Quarantine page"))
        self.status.setText(self.tr("Deleted."))
        self.model.refresh()
        return True
