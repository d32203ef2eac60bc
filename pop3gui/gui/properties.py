"""The "POP3 Connector Properties" window: the SBS dialog, modernised.

It keeps one draft config.  The editing pages (accounts, policies, schedule,
delivery, alerts) show and change the draft; OK and Apply write it whole and valid;
Cancel and closing with unsaved changes ask first.  The Events and Quarantine
pages show the engine's live state.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QPushButton, QTabWidget, QVBoxLayout, QWidget

from pop3gui.core.config.model import Config
from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate import ImportResult
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.dialogs.import_preview import ImportPreviewDialog
from pop3gui.gui.tabs.accounts import AccountsTab
from pop3gui.gui.tabs.alerts import AlertsTab
from pop3gui.gui.tabs.base import ConfigTab
from pop3gui.gui.tabs.delivery import DeliveryTab
from pop3gui.gui.tabs.events import EventsTab
from pop3gui.gui.tabs.policies import PoliciesTab
from pop3gui.gui.tabs.quarantine import QuarantineTab
from pop3gui.gui.tabs.schedule import ScheduleTab


class PropertiesWindow(QDialog):
    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle(self.tr("POP3 Connector Properties"))
        self.setWindowFlag(Qt.WindowType.WindowMinMaxButtonsHint, True)
        self.resize(960, 640)

        self.accounts = AccountsTab(controller)
        self.policies = PoliciesTab()
        self.schedule = ScheduleTab(controller)
        self.delivery = DeliveryTab(controller)
        self.events = EventsTab(controller)
        self.quarantine = QuarantineTab(controller)
        self.alerts = AlertsTab(controller)
        self.edit_tabs: list[ConfigTab] = [self.accounts, self.policies, self.schedule, self.delivery, self.alerts]

        self.tabs = QTabWidget()
        self.tabs.addTab(self.accounts, self.tr("&Mail Accounts"))
        self.tabs.addTab(self.policies, self.tr("Recipient &Policies"))
        self.tabs.addTab(self.schedule, self.tr("&Scheduling"))
        self.tabs.addTab(self.delivery, self.tr("&Delivery"))
        self.tabs.addTab(self.events, self.tr("&Events"))
        self.tabs.addTab(self.quarantine, self.tr("&Quarantine"))
        self.tabs.addTab(self.alerts, self.tr("Ale&rts"))

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.apply_changes)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setDefault(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.buttons)

        for tab in self.edit_tabs:
            tab.edited.connect(self._on_edited)
        self.accounts.import_requested.connect(self.open_import_dialog)
        save = QShortcut(QKeySequence(QKeySequence.StandardKey.Save), self)
        save.activated.connect(self.apply_changes)
        self._saved = controller.config
        self.draft = controller.config
        self._load(controller.config)

    @property
    def apply_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Apply)

    # --- draft ------------------------------------------------------------------

    def _load(self, config: Config) -> None:
        for tab in self.edit_tabs:
            tab.blockSignals(True)
            tab.load(config)
            tab.blockSignals(False)
        self._saved = config
        self.draft = config
        self._broadcast()

    def problems(self) -> list[str]:
        return [p for tab in self.edit_tabs for p in tab.problems()]

    def _collect(self) -> Config:
        """The draft from every page that is currently valid."""
        config = self.draft
        for tab in self.edit_tabs:
            if not tab.problems():
                config = tab.apply(config)
        return config

    def _on_edited(self) -> None:
        self.draft = self._collect()
        self._broadcast()

    def _broadcast(self) -> None:
        for tab in self.edit_tabs:
            tab.draft_changed(self.draft)
        self.apply_button.setEnabled(self.dirty)

    @property
    def dirty(self) -> bool:
        return (self.draft != self._saved or bool(self.problems())
                or any(tab.has_pending_secret() for tab in self.edit_tabs))

    # --- import -----------------------------------------------------------------

    def open_import_dialog(self) -> ImportPreviewDialog:
        """Import from fetchmail or getmail (Mail Accounts' Import…), previewed against the current draft."""
        dialog = ImportPreviewDialog(self._collect(), self)

        def accepted() -> None:
            result = dialog.import_result()
            if result is not None:
                self.apply_import(result)

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def apply_import(self, result: ImportResult) -> asyncio.Future[Any]:
        """Put what the file says into the draft, as ``pop3gui import`` puts it into an existing config.

        Its recipient policies and size limit go to their pages and are saved
        with OK or Apply (the SMTP server already set up is kept; the preview
        says so when the file names another); the accounts are added as Add…
        adds them, with their passwords to the keyring.
        """
        merged = replace(self._collect(), policies=result.config.policies, delivery=result.config.delivery)
        for tab in (self.policies, self.delivery):
            tab.blockSignals(True)
            tab.load(merged)
            tab.blockSignals(False)
        self._on_edited()
        return self.accounts.add_imported(result)

    # --- buttons ----------------------------------------------------------------

    def apply_changes(self) -> bool:
        """Write the draft if every page is valid; say what is wrong otherwise."""
        problems = self.problems()
        if problems:
            QMessageBox.warning(self, self.tr("Cannot save yet"),
                                self.tr("Correct these entries first:") + "\n\n• " + "\n• ".join(problems))
            return False
        config = self._collect()
        try:
            self.controller.save(config)
        except ConfigError as exc:
            QMessageBox.warning(self, self.tr("Cannot save the configuration"), exc.explain())
            return False
        except OSError as exc:
            QMessageBox.warning(self, self.tr("Cannot save the configuration"),
                                self.tr("Writing {path} failed: {error}.\nCheck the folder's permissions and "
                                        "free disk space.").format(path=self.controller.paths.config_file,
                                                                   error=exc.strerror or exc))
            return False
        self._load(config)
        return True

    def accept(self) -> None:
        if not self.dirty or self.apply_changes():
            super().accept()

    def reject(self) -> None:
        if self._confirm_discard():
            self._load(self._saved)
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        event.ignore()
        self.reject()  # asks about unsaved changes, then hides

    def _confirm_discard(self) -> bool:
        if not self.dirty:
            return True
        answer = QMessageBox.question(
            self, self.tr("Unsaved changes"),
            self.tr("You have changed the connector's settings. Save the changes?"),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.apply_changes()
        return answer == QMessageBox.StandardButton.Discard
