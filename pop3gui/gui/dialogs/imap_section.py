"""What an IMAP account fetches and what becomes of handled mail: folders, after delivery, IDLE.

Shown only for an IMAP account.  The folders are a list with checkboxes
(:class:`~pop3gui.gui.dialogs.folders.FolderList`); **List Server Folders**
logs in as the Test does and fills it with the server's folders.  After
delivery a message is deleted, moved to a folder (created at the first move
if the server does not have it; it must not be one the account fetches
from) or kept on the server; *when* it leaves is what the Options say.
With IDLE the server announces new mail, which is then fetched at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from pop3gui.core.config.load import check_folder
from pop3gui.core.config.model import AccountConfig
from pop3gui.core.engine.findings import Finding
from pop3gui.gui.dialogs.fields import buddy, with_messages
from pop3gui.gui.dialogs.folders import FolderList, same_folder
from pop3gui.gui.tabs.base import field_error_label, show_error

__all__ = ["AFTER_DELIVERY_CHOICES", "FolderCheck", "ImapSection"]

log = logging.getLogger(__name__)

FolderCheck = Callable[[], Awaitable[Finding]]
"""Logs in to the account as entered (as the Test does) and returns the account's finding, with the folders."""

AFTER_DELIVERY_CHOICES = (("delete", "Delete from the server"), ("move", "Move to folder"),
                          ("keep", "Keep on the server"))


class ImapSection(QGroupBox):
    """The "IMAP folders" group of the account dialog.

    ``check`` lists the server's folders (None: no connector to ask, the
    button is disabled).  ``changed`` is emitted whenever what the dialog
    checks changed; ``after_delivery_changed`` when Delete, Move or Keep is chosen.
    """

    changed = Signal()
    after_delivery_changed = Signal(str)

    def __init__(self, account: AccountConfig | None, *, check: FolderCheck | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("IMAP folders"))
        self._check = check
        self.check_task: asyncio.Future[Finding | None] | None = None
        self._build()
        self._fill(account)
        self._connect()

    def _build(self) -> None:
        form = QFormLayout(self)
        self.folder_list = FolderList()
        self.folders_view = self.folder_list.list
        self.list_button = self.folder_list.list_button
        self.folders_status = QLabel()
        self.folders_status.setObjectName("foldersStatus")
        self.folders_status.setWordWrap(True)
        self.folders_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folders_status.hide()
        self.folders_error = field_error_label()
        self.folders_label = buddy(self.tr("&Folders:"), self.folders_view)
        form.addRow(self.folders_label, with_messages(self.folder_list, self.folders_status, self.folders_error))

        self.after_combo = QComboBox()
        for key, label in AFTER_DELIVERY_CHOICES:
            self.after_combo.addItem(self.tr(label), key)
        self.after_combo.setToolTip(self.tr("What becomes of a message once it is delivered; when, the Options "
                                            "say (at once, or after some days)."))
        self.move_combo = QComboBox()
        self.move_combo.setEditable(True)
        self.move_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.move_combo.setAccessibleName(self.tr("Folder to move delivered mail to"))
        self.move_combo.setToolTip(self.tr("Created on the server at the first move if it does not exist."))
        line_edit = self.move_combo.lineEdit()
        if line_edit is not None:
            line_edit.setPlaceholderText(self.tr("e.g. Delivered"))
        self.move_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.move_combo.setMinimumContentsLength(10)
        self.move_error = field_error_label()
        line = QWidget()
        row = QHBoxLayout(line)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.after_combo)
        row.addWidget(self.move_combo, 1)
        form.addRow(buddy(self.tr("After deliver&y:"), self.after_combo), with_messages(line, self.move_error))

        self.idle_check = QCheckBox(self.tr("Deliver new mail at once (&IDLE)"))
        self.idle_check.setToolTip(self.tr("The server announces new mail, which is then fetched within seconds "
                                           "instead of at the next scheduled run."))
        form.addRow("", self.idle_check)

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or AccountConfig(name="", host="", username="")
        self.folder_list.set_folders(acc.folders)
        self.after_combo.setCurrentIndex(max(0, self.after_combo.findData(acc.after_delivery)))
        self.move_combo.setEditText(acc.move_to)
        self.idle_check.setChecked(acc.idle)
        self.list_button.setEnabled(self._check is not None)
        if self._check is None:
            self.list_button.setToolTip(self.tr("Listing the server's folders is available in the properties "
                                                "window of the connector."))
        self._update_after()

    def _connect(self) -> None:
        self.folder_list.changed.connect(self.changed)
        self.after_combo.currentIndexChanged.connect(self._after_changed)
        self.move_combo.editTextChanged.connect(self.changed)
        self.list_button.clicked.connect(self.list_server_folders)

    # --- behaviour ----------------------------------------------------------------

    def after_delivery(self) -> str:
        """delete, move or keep."""
        return str(self.after_combo.currentData())

    def move_to(self) -> str:
        return self.move_combo.currentText()

    def _after_changed(self) -> None:
        self._update_after()
        self.after_delivery_changed.emit(self.after_delivery())
        self.changed.emit()

    def _update_after(self) -> None:
        self.move_combo.setVisible(self.after_delivery() == "move")

    def show_server_folders(self, folders: Iterable[str]) -> None:
        """The server's folders (from a Test): the list offers them, and so does the folder to move to."""
        self.folder_list.show_server_folders(folders)
        folders = self.folder_list.server_folders()
        text = self.move_combo.currentText()
        self.move_combo.blockSignals(True)
        try:
            self.move_combo.clear()
            self.move_combo.addItems(list(folders))
            self.move_combo.setEditText(text)
        finally:
            self.move_combo.blockSignals(False)
        self.changed.emit()

    def server_folders(self) -> tuple[str, ...]:
        return self.folder_list.server_folders()

    def list_server_folders(self) -> asyncio.Future[Finding | None] | None:
        """Log in as the Test does and show the server's folders (the button); the dialog stays usable."""
        if self._check is None:
            return None
        if self.check_task is not None and not self.check_task.done():
            return self.check_task
        check = self._check
        self.list_button.setEnabled(False)
        self._show_status(self.tr("Logging in to the server…"), error=False)

        async def run() -> Finding | None:
            try:
                finding = await check()
            except Exception as exc:  # noqa: BLE001 - shown to the user, not a crash of the window
                log.warning("listing the folders failed", exc_info=True)
                self._show_status(self.tr("The server's folders could not be listed: %1")
                                  .replace("%1", f"{type(exc).__name__}: {exc}"), error=True)
                return None
            finally:
                self.list_button.setEnabled(True)
            self.show_finding(finding)
            return finding

        self.check_task = asyncio.ensure_future(run())
        return self.check_task

    def show_finding(self, finding: Finding) -> None:
        """What logging in found: the server's folders in the list, and the outcome under it."""
        if finding.folders:
            self.show_server_folders(finding.folders)
        count = len(finding.folders)
        listed = (self.tr("The server has 1 folder; tick the ones to fetch from.") if count == 1 else
                  self.tr("The server has %1 folders; tick the ones to fetch from.").replace("%1", str(count))
                  if count else "")
        if finding.ok:
            self._show_status("\n".join(part for part in (listed, self.tr("Test: %1.").replace("%1", finding.text))
                                        if part), error=False)
            return
        lines = [self.tr("Test failed: %1").replace("%1", finding.text)]
        if finding.cause:
            lines.append(self.tr("Cause: %1").replace("%1", finding.cause))
        if finding.fix:
            lines.append(self.tr("Fix: %1").replace("%1", finding.fix))
        if listed:
            lines.insert(0, listed)
        self._show_status("\n".join(lines), error=True)

    def _show_status(self, text: str, *, error: bool) -> None:
        self.folders_status.setStyleSheet("color: #b00020;" if error else "")
        self.folders_status.setText(text)
        self.folders_status.setVisible(bool(text))
        self.changed.emit()

    def cancel(self) -> None:
        """Stop waiting for the server (the dialog closes)."""
        if self.check_task is not None and not self.check_task.done():
            self.check_task.cancel()

    # --- checks and results -------------------------------------------------------------

    def validate(self) -> None:
        show_error(self.folders_error, self.folder_list.problem())
        show_error(self.move_error, self._move_problem())

    def _move_problem(self) -> str:
        if self.after_delivery() != "move":
            return ""
        move_to = self.move_to()
        if not move_to.strip():
            return self.tr("Enter the folder to move delivered mail to (it is created if the server does not "
                           "have it).")
        if check_folder(move_to):
            return self.tr("Not a usable folder name (a name holds no line break and is at most 512 bytes long).")
        if any(same_folder(move_to, f) or move_to.casefold() == f.casefold() for f in self.folder_list.folders()):
            return self.tr("Mail is fetched from %1, so mail moved there would be fetched again: choose another "
                           "folder.").replace("%1", move_to)
        return ""

    def error_labels(self) -> list[QLabel]:
        return [self.folders_error, self.move_error]

    def apply_to(self, account: AccountConfig) -> AccountConfig:
        """*account* with the folders and what becomes of handled mail, as entered (for an IMAP account)."""
        return replace(account, folders=self.folder_list.folders(), after_delivery=self.after_delivery(),
                       move_to=self.move_to() if self.move_to().strip() else "", idle=self.idle_check.isChecked())
