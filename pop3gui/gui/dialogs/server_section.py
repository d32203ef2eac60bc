"""The mail server of an account: protocol, host, security, port, certificate check.

The protocol is POP3 or IMAP.  The port follows the protocol and the security
(POP3 995 for TLS, 110 otherwise; IMAP 993 and 143) until someone types
another one: switching the protocol moves a port that was the other
protocol's usual one to this protocol's, and never touches a port typed in.
A hosted mailbox service's server is filled in at once when its sign-in
method is chosen (:meth:`ServerSection.use_preset`).  Without encryption, or
without checking the certificate, an amber warning says what that exposes.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox, QWidget

from pop3gui.core.config.model import AccountConfig, default_port
from pop3gui.gui.dialogs.fields import buddy, field_warning_label, with_messages
from pop3gui.gui.tabs.base import field_error_label, show_error

__all__ = ["PRESETS", "PROTOCOL_NAMES", "ServerSection"]

# The server of a hosted mailbox service: host, port, security (keyed by protocol, then the sign-in method).
PRESETS = {
    "pop3": {"microsoft": ("outlook.office365.com", 995, "tls"), "google": ("pop.gmail.com", 995, "tls")},
    "imap": {"microsoft": ("outlook.office365.com", 993, "tls"), "google": ("imap.gmail.com", 993, "tls")},
}

PROTOCOL_NAMES = {"pop3": "POP3", "imap": "IMAP"}


class ServerSection(QGroupBox):
    """The "POP3 server" (or "IMAP server") group of the account dialog.

    ``changed`` is emitted whenever what it shows changes (the dialog then
    checks its fields again and grows to fit the messages);
    ``protocol_changed`` when POP3 or IMAP is chosen.
    """

    changed = Signal()
    protocol_changed = Signal(str)

    def __init__(self, account: AccountConfig | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._port_typed = False
        self._setting_port = False
        self._build()
        self._fill(account)
        self._connect()

    def _build(self) -> None:
        form = QFormLayout(self)
        self.protocol_combo = QComboBox()
        self.protocol_combo.addItem(self.tr("POP3"), "pop3")
        self.protocol_combo.addItem(self.tr("IMAP"), "imap")
        self.protocol_combo.setToolTip(self.tr("POP3 fetches the inbox; IMAP fetches the folders you choose and can "
                                               "move handled mail to another folder."))
        form.addRow(buddy(self.tr("Mailbo&x protocol:"), self.protocol_combo), self.protocol_combo)
        self.host_edit = QLineEdit()
        self.host_error = field_error_label()
        form.addRow(buddy(self.tr("&Server:"), self.host_edit), with_messages(self.host_edit, self.host_error))
        self.security_combo = QComboBox()
        self.security_combo.addItem(self.tr("TLS (POP3S)"), "tls")
        self.security_combo.addItem(self.tr("STARTTLS"), "starttls")
        self.security_combo.addItem(self.tr("None"), "none")
        self.security_warning = field_warning_label()
        form.addRow(buddy(self.tr("Se&curity:"), self.security_combo),
                    with_messages(self.security_combo, self.security_warning))
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        form.addRow(buddy(self.tr("&Port:"), self.port_spin), self.port_spin)
        self.verify_check = QCheckBox(self.tr("&Verify the server's certificate"))
        self.verify_warning = field_warning_label()
        form.addRow("", with_messages(self.verify_check, self.verify_warning))

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or AccountConfig(name="", host="", username="")
        self.protocol_combo.setCurrentIndex(max(0, self.protocol_combo.findData(acc.protocol)))
        self.host_edit.setText(acc.host)
        self.security_combo.setCurrentIndex(max(0, self.security_combo.findData(acc.security)))
        self._set_port(acc.port)
        # A port other than the usual one for the protocol and security was chosen by someone: keep it.
        self._port_typed = account is not None and acc.port != default_port(acc.protocol, acc.security)
        self.verify_check.setChecked(acc.verify_tls)
        self._update_protocol()
        self._update_security()

    def _connect(self) -> None:
        self.protocol_combo.currentIndexChanged.connect(self._protocol_changed)
        self.host_edit.textChanged.connect(self.changed)
        self.security_combo.currentIndexChanged.connect(self._security_changed)
        self.security_combo.currentIndexChanged.connect(self.changed)
        self.verify_check.toggled.connect(self.changed)
        self.port_spin.valueChanged.connect(self._port_changed)
        self.verify_check.toggled.connect(self._update_security)

    # --- behaviour ----------------------------------------------------------------

    def protocol(self) -> str:
        """pop3 or imap."""
        return str(self.protocol_combo.currentData())

    def _set_port(self, port: int) -> None:
        self._setting_port = True
        try:
            self.port_spin.setValue(port)
        finally:
            self._setting_port = False

    def _port_changed(self, _value: int) -> None:
        if not self._setting_port:
            self._port_typed = True

    def _protocol_changed(self) -> None:
        protocol = self.protocol()
        other = "pop3" if protocol == "imap" else "imap"
        security = self.security_combo.currentData()
        if self.port_spin.value() == default_port(other, security):
            self._set_port(default_port(protocol, security))
            self._port_typed = False
        host = self.host_edit.text().strip()
        for method, (preset_host, _port, _security) in PRESETS[other].items():
            if host == preset_host and method in PRESETS[protocol]:  # e.g. pop.gmail.com -> imap.gmail.com
                self.host_edit.setText(PRESETS[protocol][method][0])
                break
        self._update_protocol()
        self.protocol_changed.emit(protocol)
        self.changed.emit()

    def _update_protocol(self) -> None:
        imap = self.protocol() == "imap"
        self.setTitle(self.tr("IMAP server") if imap else self.tr("POP3 server"))
        self.host_edit.setPlaceholderText(self.tr("imap.example.com") if imap else self.tr("pop.example.com"))
        self.security_combo.setItemText(self.security_combo.findData("tls"),
                                        self.tr("TLS (IMAPS)") if imap else self.tr("TLS (POP3S)"))

    def _security_changed(self) -> None:
        security = self.security_combo.currentData()
        if not self._port_typed:
            self._set_port(default_port(self.protocol(), security))
        self._update_security()

    def _update_security(self) -> None:
        security = self.security_combo.currentData()
        show_error(self.security_warning,
                   self.tr("Without encryption the password and every message travel in clear text "
                           "over the network.") if security == "none" else "")
        self.verify_check.setEnabled(security != "none")
        show_error(self.verify_warning,
                   self.tr("Without checking the certificate, anyone between you and the server can read "
                           "the password and the mail.")
                   if security != "none" and not self.verify_check.isChecked() else "")

    def use_preset(self, method: str) -> None:
        """A hosted service's sign-in method was chosen: its server is known (other methods keep the fields)."""
        preset = PRESETS[self.protocol()].get(method)
        if preset is None:
            return
        host, port, security = preset
        self.host_edit.setText(host)
        self.security_combo.setCurrentIndex(max(0, self.security_combo.findData(security)))
        self._set_port(port)
        self._port_typed = False
        self.verify_check.setChecked(True)

    # --- checks and results -----------------------------------------------------------

    def validate(self) -> None:
        host = self.host_edit.text().strip()
        imap = self.protocol() == "imap"
        show_error(self.host_error,
                   (self.tr("Enter the IMAP server's host name, e.g. imap.example.com.") if imap else
                    self.tr("Enter the POP3 server's host name, e.g. pop.example.com.")) if not host else
                   self.tr("A host name has no spaces.") if any(c.isspace() for c in host) else "")

    def error_labels(self) -> list[QLabel]:
        return [self.host_error]

    def apply_to(self, account: AccountConfig) -> AccountConfig:
        """*account* with the server as entered."""
        return replace(account, protocol=self.protocol(), host=self.host_edit.text().strip(),
                       port=self.port_spin.value(), security=self.security_combo.currentData(),
                       verify_tls=self.verify_check.isChecked())
