"""Quarantine: messages nobody would accept, kept until the admin acts.

Resubmit runs resolution and submission again (after fixing a policy, say);
Export saves the .eml; Delete asks first, because it is the last copy.
"""

from __future__ import annotations

import asyncio
import shutil
from email import policy
from email.parser import BytesHeaderParser
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

from pop3gui.core.errors import Pop3guiError
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

    def view_headers(self, *_: object) -> None:
        record = self.selected()
        if record is None:
            return
        path = self.model.quarantine.message_path(record.id)
        try:
            with path.open("rb") as fh:
                headers = BytesHeaderParser(policy=policy.default).parse(fh)
            text = "".join(f"{k}: {v}\n" for k, v in headers.items())
        except OSError as exc:
            text = self.tr("Cannot read {path}: {error}").format(path=path, error=exc.strerror)
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
        dialog.open()

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
        if record is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Export message"), f"{record.id}.eml",
                                              self.tr("E-mail messages (*.eml)"))
        if name:
            self.export(record.id, Path(name))

    def export(self, record_id: str, target: Path) -> bool:
        try:
            shutil.copyfile(self.model.quarantine.message_path(record_id), target)
        except OSError as exc:
            QMessageBox.warning(self, self.tr("Export failed"),
                                self.tr("Could not write {path}: {error}.\nChoose a folder you can write to.")
                                .format(path=target, error=exc.strerror or exc))
            return False
        self.status.setText(self.tr("Exported to {path}.").format(path=target))
        return True

    def _delete_clicked(self) -> None:
        record = self.selected()
        if record is None:
            return
        answer = QMessageBox.question(
            self, self.tr("Delete quarantined message"),
            self.tr("Delete \"{subject}\" for good? This is the message's only copy.").format(
                subject=record.subject), QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(record.id)

    def delete(self, record_id: str) -> None:
        self.model.quarantine.remove(record_id)
        self.model.refresh()



