"""Delivery: the local mail server, the undeliverable mailbox, size limit, logging, and how long history is kept.

The SBS connector's "Troubleshooting" tab, modernised: the password of the
SMTP login goes to the keyring when the page is saved and is never shown.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.load import MIN_EVENT_STORE_MB
from pop3gui.core.config.model import LOG_LEVELS, Config
from pop3gui.core.errors import CredentialError
from pop3gui.core.mail.addresses import normalize_address
from pop3gui.core.threads import in_lookup_thread
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.base import ConfigTab, field_error_label, show_error

SECURITY_CHOICES = (("none", "None (plain SMTP)"), ("starttls", "STARTTLS"), ("tls", "TLS (implicit)"))


class DeliveryTab(ConfigTab):
    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller

        self.host = QLineEdit()
        self.host_error = field_error_label()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.security = QComboBox()
        for key, text in SECURITY_CHOICES:
            self.security.addItem(self.tr(text), key)
        self.verify = QCheckBox(self.tr("&Verify the server's certificate"))
        self.username = QLineEdit()
        self.username.setPlaceholderText(self.tr("empty: no SMTP login"))
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(self.tr("unchanged"))
        self.timeout = QSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setSuffix(self.tr(" s"))

        self.undeliverable = QLineEdit()
        self.undeliverable_error = field_error_label()
        self.max_size = QSpinBox()
        self.max_size.setRange(1, 4096)
        self.max_size.setSuffix(self.tr(" MB"))
        self.log_level = QComboBox()
        for level in LOG_LEVELS:
            self.log_level.addItem(self.tr(level.capitalize()), level)

        self.quarantine_days = QSpinBox()
        self.quarantine_days.setRange(0, 36500)
        self.quarantine_days.setSuffix(self.tr(" days"))
        self.quarantine_days.setSpecialValueText(self.tr("Until I act"))
        self.keep_days = QSpinBox()
        self.keep_days.setRange(0, 36500)
        self.keep_days.setSuffix(self.tr(" days"))
        self.keep_days.setSpecialValueText(self.tr("No age limit"))
        self.max_mb = QSpinBox()
        self.max_mb.setRange(0, 1024 * 1024)
        self.max_mb.setSuffix(self.tr(" MB"))
        self.max_mb.setSpecialValueText(self.tr("No size limit"))
        self.max_mb_error = field_error_label()

        smtp_box = QGroupBox(self.tr("Local mail server (SMTP)"))
        form = QFormLayout(smtp_box)
        form.addRow(self._label("&Server:", self.host), self.host)
        form.addRow("", self.host_error)
        form.addRow(self._label("P&ort:", self.port), self.port)
        form.addRow(self._label("Se&curity:", self.security), self.security)
        form.addRow("", self.verify)
        form.addRow(self._label("&User name:", self.username), self.username)
        form.addRow(self._label("Pass&word:", self.password), self.password)
        form.addRow(self._label("&Timeout:", self.timeout), self.timeout)

        delivery_box = QGroupBox(self.tr("Undeliverable mail and limits"))
        form2 = QFormLayout(delivery_box)
        form2.addRow(self._label("Undeliverable &mailbox:", self.undeliverable), self.undeliverable)
        form2.addRow("", self.undeliverable_error)
        form2.addRow(self._label("Ma&ximum message size:", self.max_size), self.max_size)
        form2.addRow(self._label("&Keep quarantined mail:", self.quarantine_days), self.quarantine_days)
        form2.addRow(self._label("&Logging level:", self.log_level), self.log_level)
        hint = QLabel(self.tr("Messages bigger than the maximum stay on the POP3 server, with one event. Mail "
                              "that no local recipient accepts goes to the undeliverable mailbox with a notice "
                              "saying why; if that mailbox refuses it too, it is kept in Quarantine. Quarantined "
                              "mail is removed after the days to keep it, each removal an event; an alert lists "
                              "it a day before, so it can be resubmitted or exported in time."))
        hint.setWordWrap(True)

        history_box = QGroupBox(self.tr("Event history"))
        form3 = QFormLayout(history_box)
        form3.addRow(self._label("Keep events &for:", self.keep_days), self.keep_days)
        form3.addRow(self._label("L&imit the event store to:", self.max_mb), self.max_mb)
        form3.addRow("", self.max_mb_error)
        history_hint = QLabel(self.tr("Older events are removed after every cycle, a little at a time, and the "
                                      "oldest go first while the store is over its size."))
        history_hint.setWordWrap(True)
        form3.addRow(history_hint)

        for spin in (self.port, self.timeout, self.max_size, self.quarantine_days, self.keep_days, self.max_mb):
            spin.setMinimumWidth(120)
        for form_layout in (form, form2, form3):
            form_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for edit in (self.host, self.username, self.password, self.undeliverable):
            edit.setMinimumWidth(360)
        layout = QVBoxLayout(self)
        layout.addWidget(smtp_box)
        layout.addWidget(delivery_box)
        layout.addWidget(hint)
        layout.addWidget(history_box)
        layout.addStretch()

        for edit in (self.host, self.username, self.undeliverable, self.password):
            edit.textEdited.connect(self._changed)
        for spin in (self.port, self.timeout, self.max_size, self.quarantine_days, self.keep_days, self.max_mb):
            spin.valueChanged.connect(self._changed)
        for combo in (self.security, self.log_level):
            combo.currentIndexChanged.connect(self._changed)
        self.verify.toggled.connect(self._changed)
        controller.config_saved.connect(self._store_password)

    def _label(self, text: str, buddy: QWidget) -> QLabel:
        label = QLabel(self.tr(text))
        label.setBuddy(buddy)
        return label

    def load(self, config: Config) -> None:
        smtp = config.smtp
        self.host.setText(smtp.host)
        self.port.setValue(smtp.port)
        self.security.setCurrentIndex(max(self.security.findData(smtp.security), 0))
        self.verify.setChecked(smtp.verify_tls)
        self.username.setText(smtp.username)
        self.password.clear()
        self.timeout.setValue(int(smtp.timeout_s))
        self.undeliverable.setText(config.delivery.undeliverable_to)
        self.max_size.setValue(max(1, round(config.delivery.max_message_kb / 1024)))
        self._max_kb_loaded = config.delivery.max_message_kb
        self.log_level.setCurrentIndex(max(self.log_level.findData(config.logging.level), 0))
        self.quarantine_days.setValue(config.delivery.quarantine_keep_days)
        self.keep_days.setValue(config.events.keep_days)
        self.max_mb.setValue(config.events.max_mb)
        self._validate()

    def apply(self, config: Config) -> Config:
        max_kb = self.max_size.value() * 1024
        if round(self._max_kb_loaded / 1024) == self.max_size.value():
            max_kb = self._max_kb_loaded  # keep an exact KB value the file had
        return replace(
            config,
            smtp=replace(config.smtp, host=self.host.text().strip(), port=self.port.value(),
                         security=self.security.currentData(), verify_tls=self.verify.isChecked(),
                         username=self.username.text().strip(), timeout_s=float(self.timeout.value())),
            delivery=replace(config.delivery, undeliverable_to=self.undeliverable.text().strip(),
                             max_message_kb=max_kb, quarantine_keep_days=self.quarantine_days.value()),
            events=replace(config.events, keep_days=self.keep_days.value(), max_mb=self.max_mb.value()),
            logging=replace(config.logging, level=self.log_level.currentData()),
        )

    def problems(self) -> list[str]:
        return [p for p in (self.host_error.text(), self.undeliverable_error.text(), self.max_mb_error.text()) if p]

    def has_pending_secret(self) -> bool:
        return bool(self.password.text())

    def _changed(self) -> None:
        self.verify.setEnabled(self.security.currentData() != "none")
        self._validate()
        self.edited.emit()

    def _validate(self) -> None:
        host = self.host.text().strip()
        show_error(self.host_error, "" if host and " " not in host else
                   self.tr("Enter the local mail server's host name or address."))
        address = self.undeliverable.text().strip()
        show_error(self.undeliverable_error, "" if not address or normalize_address(address) else
                   self.tr("\"{text}\" is not an e-mail address.").format(text=address))
        size = self.max_mb.value()
        show_error(self.max_mb_error, "" if size == 0 or size >= MIN_EVENT_STORE_MB else
                   self.tr("Keep at least {mb} MB of events, or choose No size limit.").format(mb=MIN_EVENT_STORE_MB))

    def _store_password(self, config: Config) -> None:
        """After a save: put a newly typed SMTP password in the keyring, off the GUI thread."""
        password = self.password.text()
        if not password or not config.smtp.username:
            return
        self.password.clear()
        asyncio.ensure_future(self._write_password(config.smtp.username, password))

    async def _write_password(self, username: str, password: str) -> None:
        try:
            await in_lookup_thread(self.controller.credentials.set_smtp_password, username, password)
        except CredentialError as exc:
            QMessageBox.warning(self, self.tr("Password not stored"), exc.explain())
