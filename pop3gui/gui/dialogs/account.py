"""The properties of one POP3 account: server, sign-in, where its mail goes.

Every input is checked as it is typed and the reason is shown under the
field; OK stays disabled while anything is invalid.  The password is never
read back from the keyring: the field only says (as its placeholder) whether
one is stored, and an empty field on OK keeps the stored one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace

from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import POP3_PORTS, AccountConfig, RoutingRuleConfig
from pop3gui.core.errors import CredentialError
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.state.credentials import Credentials
from pop3gui.gui.dialogs.fields import address_problem, buddy, field_warning_label, policy_warning, with_messages
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error

_HEADER_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}


class AccountDialog(QDialog):
    """Add or edit one account; ``account()`` and ``new_password()`` after OK.

    ``rules`` are the routing rules of this account (for a global mailbox);
    ``routing_rules()`` returns them as edited with **Routing Rules…**.
    """

    def __init__(self, account: AccountConfig | None = None, *, other_names: Iterable[str] = (),
                 local_domains: Iterable[str] = (), rules: Sequence[RoutingRuleConfig] = (),
                 credentials: Credentials | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = account
        self._other_names = {n.casefold() for n in other_names}
        self._local_domains = LocalDomains(local_domains, skip_invalid=True)
        self._rules = list(rules)
        self._credentials = credentials
        self._port_typed = False
        self._setting_port = False
        self.password_check: asyncio.Future[bool] | None = None
        self.setWindowTitle(self.tr("Account Properties") if account else self.tr("New Account"))
        self._build()
        self._fill(account)
        self._connect()
        self._validate()
        self._start_password_check()

    # --- building ---------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(self.tr("e.g. Alice at the ISP"))
        self.name_error = field_error_label()
        top = QFormLayout()
        top.addRow(buddy(self.tr("&Name:"), self.name_edit), with_messages(self.name_edit, self.name_error))
        outer.addLayout(top)

        server = QGroupBox(self.tr("POP3 server"))
        form = QFormLayout(server)
        self.host_edit = QLineEdit()
        self.host_edit.setPlaceholderText(self.tr("pop.example.com"))
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
        outer.addWidget(server)

        signin = QGroupBox(self.tr("Sign-in"))
        form = QFormLayout(signin)
        self.username_edit = QLineEdit()
        self.username_error = field_error_label()
        form.addRow(buddy(self.tr("&User name:"), self.username_edit),
                    with_messages(self.username_edit, self.username_error))
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText(self.tr("checking the keyring…") if self._original else "")
        self.password_note = QLabel()
        self.password_note.setWordWrap(True)
        self.password_note.hide()
        form.addRow(buddy(self.tr("Pass&word:"), self.password_edit),
                    with_messages(self.password_edit, self.password_note))
        outer.addWidget(signin)

        delivery = QGroupBox(self.tr("Delivery"))
        form = QFormLayout(delivery)
        self.kind_combo = QComboBox()
        self.kind_combo.addItem(icon("user"), self.tr("User mailbox (one recipient)"), "user")
        self.kind_combo.addItem(icon("global"), self.tr("Global mailbox (catch-all)"), "global")
        form.addRow(buddy(self.tr("&Mailbox type:"), self.kind_combo), self.kind_combo)
        self.deliver_edit = QLineEdit()
        self.deliver_edit.setPlaceholderText(self.tr("someone@your-domain"))
        self.deliver_error = field_error_label()
        self.deliver_warning = field_warning_label()
        self.deliver_label = buddy(self.tr("&Deliver to:"), self.deliver_edit)
        self.deliver_row = with_messages(self.deliver_edit, self.deliver_error, self.deliver_warning)
        form.addRow(self.deliver_label, self.deliver_row)
        self.headers_edit = QLineEdit()
        self.headers_edit.setToolTip(self.tr("The headers in which the ISP writes the envelope recipient, "
                                             "separated by commas; when none is present, To and Cc are used."))
        self.headers_error = field_error_label()
        self.headers_label = buddy(self.tr("&Envelope headers:"), self.headers_edit)
        self.rules_button = QPushButton(icon("edit"), self.tr("&Routing Rules…"))
        self.rules_button.setAutoDefault(False)
        self.rules_summary = QLabel()
        rules_line = QWidget()
        line = QHBoxLayout(rules_line)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.rules_button)
        line.addWidget(self.rules_summary, 1)
        self.headers_row = with_messages(self.headers_edit, self.headers_error, rules_line)
        form.addRow(self.headers_label, self.headers_row)
        self._delivery_form = form
        outer.addWidget(delivery)

        options = QGroupBox(self.tr("Options"))
        form = QFormLayout(options)
        self.leave_check = QCheckBox(self.tr("&Leave a copy of the messages on the server"))
        form.addRow(self.leave_check)
        self.delete_days_spin = QSpinBox()
        self.delete_days_spin.setRange(0, 36500)
        self.delete_days_spin.setSpecialValueText(self.tr("never"))
        self.delete_days_spin.setSuffix(self.tr(" days"))
        self.delete_days_label = buddy(self.tr("   Delete from the server &after:"), self.delete_days_spin)
        form.addRow(self.delete_days_label, self.delete_days_spin)
        self.enabled_check = QCheckBox(self.tr("Ena&bled (retrieve mail from this account)"))
        form.addRow(self.enabled_check)
        outer.addWidget(options)

        outer.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setDefault(True)
        outer.addWidget(self.buttons)
        self.setMinimumWidth(540)
        self.resize(560, self.sizeHint().height())

    def _fit_height(self) -> None:
        """Grow (never squeeze) when message labels appear: word-wrapped text needs height-for-width."""
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else \
            layout.totalMinimumSize().height()
        if self.height() < needed:
            self.resize(self.width(), needed)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit_height()

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or AccountConfig(name="", host="", username="")
        self.name_edit.setText(acc.name)
        self.host_edit.setText(acc.host)
        self.security_combo.setCurrentIndex(max(0, self.security_combo.findData(acc.security)))
        self._set_port(acc.port)
        # A port other than the usual one for the security was chosen by someone: keep it.
        self._port_typed = account is not None and acc.port != POP3_PORTS.get(acc.security)
        self.verify_check.setChecked(acc.verify_tls)
        self.username_edit.setText(acc.username)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(acc.kind)))
        self.deliver_edit.setText(acc.deliver_to)
        self.headers_edit.setText(", ".join(acc.envelope_headers))
        self.leave_check.setChecked(acc.leave_on_server)
        self.delete_days_spin.setValue(acc.delete_after_days)
        self.enabled_check.setChecked(acc.enabled)
        self._update_kind()
        self._update_leave()
        self._update_security()
        self._update_rules_summary()

    def _connect(self) -> None:
        for edit in (self.name_edit, self.host_edit, self.username_edit, self.deliver_edit, self.headers_edit):
            edit.textChanged.connect(self._validate)
        self.security_combo.currentIndexChanged.connect(self._security_changed)
        self.security_combo.currentIndexChanged.connect(self._fit_height)
        self.verify_check.toggled.connect(self._fit_height)
        self.port_spin.valueChanged.connect(self._port_changed)
        self.verify_check.toggled.connect(self._update_security)
        self.kind_combo.currentIndexChanged.connect(self._update_kind)
        self.kind_combo.currentIndexChanged.connect(self._validate)
        self.kind_combo.currentIndexChanged.connect(self._fit_height)
        self.leave_check.toggled.connect(self._update_leave)
        self.rules_button.clicked.connect(self.edit_rules)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    # --- behaviour ----------------------------------------------------------------

    def _set_port(self, port: int) -> None:
        self._setting_port = True
        try:
            self.port_spin.setValue(port)
        finally:
            self._setting_port = False

    def _port_changed(self, _value: int) -> None:
        if not self._setting_port:
            self._port_typed = True

    def _security_changed(self) -> None:
        security = self.security_combo.currentData()
        if not self._port_typed:
            self._set_port(POP3_PORTS[security])
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

    def _update_kind(self) -> None:
        is_global = self.kind_combo.currentData() == "global"
        self.deliver_label.setVisible(not is_global)
        self.deliver_row.setVisible(not is_global)
        self.headers_label.setVisible(is_global)
        self.headers_row.setVisible(is_global)
        self.rules_button.setVisible(is_global)

    def _update_leave(self) -> None:
        self.delete_days_spin.setEnabled(self.leave_check.isChecked())
        self.delete_days_label.setEnabled(self.leave_check.isChecked())

    def _update_rules_summary(self) -> None:
        count = len(self._rules)
        self.rules_summary.setText(self.tr("No routing rules") if count == 0 else
                                   self.tr("1 routing rule") if count == 1 else
                                   self.tr("%1 routing rules").replace("%1", str(count)))

    def is_global(self) -> bool:
        return bool(self.kind_combo.currentData() == "global")

    def envelope_headers(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.headers_edit.text().split(",") if part.strip())

    def problems(self) -> list[str]:
        """What is invalid right now (the same texts as shown next to the fields)."""
        return [label.text() for label in self._error_labels() if label.text()]

    def _error_labels(self) -> list[QLabel]:
        return [self.name_error, self.host_error, self.username_error, self.deliver_error, self.headers_error]

    def _validate(self) -> None:
        name = self.name_edit.text()
        if not name.strip():
            problem = self.tr("Enter a name for this account.")
        elif name.strip().casefold() in self._other_names:
            problem = self.tr("Another account is already called %1.").replace("%1", name.strip())
        elif len(name) > 100 or any(ord(c) < 32 for c in name):
            problem = self.tr("At most 100 printable characters.")
        else:
            problem = ""
        show_error(self.name_error, problem)

        host = self.host_edit.text().strip()
        show_error(self.host_error,
                   self.tr("Enter the POP3 server's host name, e.g. pop.example.com.") if not host else
                   self.tr("A host name has no spaces.") if any(c.isspace() for c in host) else "")

        user = self.username_edit.text()
        show_error(self.username_error,
                   self.tr("Enter the user name the ISP gave you.") if not user.strip() else "")

        if self.is_global():
            show_error(self.deliver_error, "")
            show_error(self.deliver_warning, "")
            parts = [p.strip() for p in self.headers_edit.text().split(",")]
            if self.headers_edit.text().strip() and not all(parts):
                headers_problem = self.tr("Separate header names with single commas.")
            else:
                bad = [p for p in parts if p and not set(p) <= _HEADER_CHARS]
                headers_problem = (self.tr("Not a header name: %1").replace("%1", bad[0]) if bad else "")
            show_error(self.headers_error, headers_problem)
        else:
            show_error(self.headers_error, "")
            problem = address_problem(self, self.deliver_edit.text())
            show_error(self.deliver_error, problem)
            show_error(self.deliver_warning,
                       "" if problem else policy_warning(self, self.deliver_edit.text(), self._local_domains))
        self.ok_button.setEnabled(not self.problems())
        self._fit_height()

    # --- the password ---------------------------------------------------------------

    def _start_password_check(self) -> None:
        if self._original is None:
            self.password_edit.setPlaceholderText(self.tr("not stored yet: enter it"))
            return
        try:
            asyncio.get_running_loop()
            if self._credentials is None:
                raise RuntimeError("no keyring to ask")
        except RuntimeError:
            self.password_edit.setPlaceholderText(self.tr("leave empty to keep the stored password"))
            return
        self.password_check = asyncio.ensure_future(self._check_password(self._original.name))

    async def _check_password(self, name: str) -> bool:
        assert self._credentials is not None
        try:
            stored: bool = await asyncio.to_thread(self._credentials.has_pop3_password, name)
        except CredentialError as exc:
            self.password_edit.setPlaceholderText(self.tr("keyring unavailable"))
            self.password_note.setText(f"{exc}\n{exc.fix}")
            self.password_note.show()
            return False
        self.password_edit.setPlaceholderText(self.tr("stored in keyring") if stored else
                                              self.tr("none stored yet: enter it"))
        return stored

    # --- rules ----------------------------------------------------------------------

    def edit_rules(self) -> None:
        from pop3gui.gui.dialogs.routing import RoutingRulesDialog

        name = self.name_edit.text().strip() or (self._original.name if self._original else "")
        dialog = RoutingRulesDialog(name, self._rules, local_domains=self._local_domains, parent=self)
        dialog.accepted.connect(lambda: self._rules_edited(dialog))
        dialog.open()

    def _rules_edited(self, dialog: QDialog) -> None:
        self._rules = dialog.rules()  # type: ignore[attr-defined]
        self._update_rules_summary()

    # --- results ----------------------------------------------------------------------

    def account(self) -> AccountConfig:
        """The account as entered (fields this dialog does not show are kept from the original)."""
        base = self._original or AccountConfig(name="", host="", username="")
        is_global = self.is_global()
        return replace(
            base,
            name=self.name_edit.text().strip(),
            host=self.host_edit.text().strip(),
            port=self.port_spin.value(),
            security=self.security_combo.currentData(),
            verify_tls=self.verify_check.isChecked(),
            username=self.username_edit.text().strip(),
            kind="global" if is_global else "user",
            deliver_to="" if is_global else self.deliver_edit.text().strip(),
            envelope_headers=self.envelope_headers() if is_global else base.envelope_headers,
            leave_on_server=self.leave_check.isChecked(),
            delete_after_days=self.delete_days_spin.value() if self.leave_check.isChecked() else 0,
            enabled=self.enabled_check.isChecked(),
        )

    def new_password(self) -> str | None:
        """The password typed in, or None to keep the stored one."""
        return self.password_edit.text() or None

    def routing_rules(self) -> list[RoutingRuleConfig]:
        """This account's rules as edited, under the account's (possibly new) name."""
        name = self.name_edit.text().strip()
        return [replace(r, account=name) for r in self._rules] if self.is_global() else []

    def accept(self) -> None:
        self._validate()
        if self.problems():
            return
        super().accept()


__all__ = ["AccountDialog"]
