"""The properties of one POP3 account: server, sign-in, where its mail goes.

Every input is checked as it is typed and the reason is shown under the
field; OK stays disabled while anything is invalid.  The password is never
read back from the keyring: the field only says (as its placeholder) whether
one is stored, and an empty field on OK keeps the stored one.

An account signs in with a password, or with OAuth2 (Microsoft 365 and
Outlook.com, Google, or another provider): then it names an OAuth2 provider
(the app registration, shared by accounts; added and edited here) and is
signed in once in the browser with **Sign in…**; the sign-in is kept in the
keyring under the account's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace

from PySide6.QtCore import Qt, Signal

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

from pop3gui.core.config.model import POP3_PORTS, AccountConfig, OAuthProviderConfig, RoutingRuleConfig
from pop3gui.core.errors import CredentialError
from pop3gui.core.oauth.store import SignIn
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.state.credentials import Credentials
from pop3gui.gui.dialogs.fields import address_problem, buddy, field_warning_label, policy_warning, with_messages
from pop3gui.gui.dialogs.sign_in import PageOpener, SignInBox, Signer
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error

_HEADER_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}

# How an account signs in: the key is the OAuth2 provider kind for the OAuth2 methods.
METHODS = (("password", "Password"), ("microsoft", "Microsoft 365 or Outlook.com"), ("google", "Google"),
           ("generic", "Other OAuth2 provider"))
ADVANCED_METHODS = (("apop", "APOP (password, never sent over the network)"),)
OAUTH_METHODS = frozenset({"microsoft", "google", "generic"})

# The POP3 server of a hosted mailbox service: host, port, security.
PRESETS = {"microsoft": ("outlook.office365.com", 995, "tls"), "google": ("pop.gmail.com", 995, "tls")}

METHOD_NOTES = {
    "microsoft": "Your Entra ID admin must register an app with POP.AccessAsUser.All and offline_access "
                 "(docs/oauth.md).",
    "google": "A Google Cloud OAuth client of type Desktop with the https://mail.google.com/ scope "
              "(docs/oauth.md); an app password may be simpler.",
    "generic": "The app registration at the provider: its client ID, authorization and token URLs and the "
               "scopes of mail access (docs/oauth.md).",
    "apop": "The server must offer APOP; the password is stored in the keyring as for Password.",
}


class AccountDialog(QDialog):
    """Add or edit one account; ``account()`` and ``new_password()`` after OK.

    ``rules`` are the routing rules of this account (for a global mailbox);
    ``routing_rules()`` returns them as edited with **Routing Rules…**.
    ``providers`` are the configuration's OAuth2 providers; ``providers()``
    returns them as added and edited here.  ``signer`` signs the account in
    (the connector's controller; without one the Sign in button is disabled)
    and ``open_page`` shows the sign-in page (the desktop's browser by default).
    """

    signed_in = Signal(str, object)  # the account name it is stored under, SignIn
    signed_out = Signal(str)

    def __init__(self, account: AccountConfig | None = None, *, other_names: Iterable[str] = (),
                 local_domains: Iterable[str] = (), rules: Sequence[RoutingRuleConfig] = (),
                 credentials: Credentials | None = None, providers: Sequence[OAuthProviderConfig] = (),
                 signer: Signer | None = None, open_page: PageOpener | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = account
        self._other_names = {n.casefold() for n in other_names}
        self._local_domains = LocalDomains(local_domains, skip_invalid=True)
        self._rules = list(rules)
        self._credentials = credentials
        self._providers = list(providers)
        self._renames: dict[str, str] = {}
        self._signer = signer
        self._open_page = open_page
        self._sign_in_owner: str | None = account.name if account is not None else None
        self._port_typed = False
        self._setting_port = False
        self._filling = False
        self.password_check: asyncio.Future[bool] | None = None
        self.status_check: asyncio.Future[SignIn | None] | None = None
        self.secret_store: asyncio.Future[bool] | None = None
        self.setWindowTitle(self.tr("Account Properties") if account else self.tr("New Account"))
        self._build()
        self._fill(account)
        self._connect()
        self._validate()
        self._start_password_check()
        self._update_method()

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
        self.method_combo = QComboBox()
        for key, label in METHODS:
            self.method_combo.addItem(self.tr(label), key)
        self.method_combo.insertSeparator(self.method_combo.count())
        for key, label in ADVANCED_METHODS:
            self.method_combo.addItem(self.tr(label), key)
        self.method_combo.setToolTip(self.tr("Microsoft 365, Outlook.com and Google mailboxes sign in with OAuth2 "
                                             "in the browser; other mailboxes usually with a password."))
        self.method_note = QLabel()
        self.method_note.setObjectName("methodNote")
        self.method_note.setWordWrap(True)
        self.method_note.hide()
        form.addRow(buddy(self.tr("Sign-in met&hod:"), self.method_combo),
                    with_messages(self.method_combo, self.method_note))
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
        self.password_label = buddy(self.tr("Pass&word:"), self.password_edit)
        self.password_row = with_messages(self.password_edit, self.password_note)
        form.addRow(self.password_label, self.password_row)

        self.provider_combo = QComboBox()
        self.provider_combo.setPlaceholderText(self.tr("none yet: press New…"))
        self.provider_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.new_provider_button = QPushButton(icon("add"), self.tr("Ne&w…"))
        self.new_provider_button.setAutoDefault(False)
        self.new_provider_button.setToolTip(self.tr("Add the app registration (client ID) accounts sign in with"))
        self.edit_provider_button = QPushButton(icon("edit"), self.tr("Edi&t…"))
        self.edit_provider_button.setAutoDefault(False)
        provider_line = QWidget()
        line = QHBoxLayout(provider_line)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.provider_combo, 1)
        line.addWidget(self.new_provider_button)
        line.addWidget(self.edit_provider_button)
        self.provider_error = field_error_label()
        self.provider_label = buddy(self.tr("Pr&ovider:"), self.provider_combo)
        self.provider_row = with_messages(provider_line, self.provider_error)
        form.addRow(self.provider_label, self.provider_row)
        self.sign_in_box = SignInBox(self._signer, self._open_page)
        self.sign_in_label = QLabel(self.tr("Status:"))
        form.addRow(self.sign_in_label, self.sign_in_box)
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
        self._filling = True
        try:
            self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(self._method_of(acc))))
        finally:
            self._filling = False
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
        self._fill_providers(acc.oauth_provider)

    def _method_of(self, acc: AccountConfig) -> str:
        if acc.auth != "oauth2":
            return acc.auth
        provider = self._provider_named(acc.oauth_provider)
        return provider.kind if provider is not None else "generic"

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
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.provider_combo.currentIndexChanged.connect(self._validate)
        self.provider_combo.currentIndexChanged.connect(self._update_provider_buttons)
        self.new_provider_button.clicked.connect(self.add_provider)
        self.edit_provider_button.clicked.connect(self.edit_provider)
        self.sign_in_box.sign_in_button.clicked.connect(self.sign_in)
        self.sign_in_box.sign_out_button.clicked.connect(self.sign_out)
        self.sign_in_box.changed.connect(self._fit_height)
        self.finished.connect(self.sign_in_box.cancel)  # a sign-in still waiting for the browser ends with the dialog
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
        return [self.name_error, self.host_error, self.username_error, self.provider_error, self.deliver_error,
                self.headers_error]

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
                   "" if user.strip() else
                   self.tr("Enter the mailbox's address, e.g. alice@contoso.com.") if self.uses_oauth() else
                   self.tr("Enter the user name the ISP gave you."))
        show_error(self.provider_error, self._provider_problem())

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

    # --- the sign-in method and OAuth2 ------------------------------------------------

    def method(self) -> str:
        """password, apop, or the kind of OAuth2 provider: microsoft, google, generic."""
        return str(self.method_combo.currentData())

    def uses_oauth(self) -> bool:
        return self.method() in OAUTH_METHODS

    def _method_changed(self) -> None:
        if self._filling:
            return
        preset = PRESETS.get(self.method())
        if preset is not None:  # a hosted service: its POP3 server is known
            host, port, security = preset
            self.host_edit.setText(host)
            self.security_combo.setCurrentIndex(max(0, self.security_combo.findData(security)))
            self._set_port(port)
            self._port_typed = False
            self.verify_check.setChecked(True)
        self._fill_providers("")  # each OAuth2 method has providers of its own kind: the first is chosen
        self._update_method()

    def _update_method(self) -> None:
        method = self.method()
        oauth = method in OAUTH_METHODS
        note = METHOD_NOTES.get(method, "")
        self.method_note.setText(self.tr(note) if note else "")
        self.method_note.setVisible(bool(note))
        for widget in (self.password_label, self.password_row):
            widget.setVisible(not oauth)
        for widget in (self.provider_label, self.provider_row, self.sign_in_label, self.sign_in_box):
            widget.setVisible(oauth)
        self.username_edit.setPlaceholderText(self.tr("the mailbox's address, e.g. alice@contoso.com") if oauth
                                              else "")
        self._update_provider_buttons()
        if oauth and self.status_check is None and self._original is not None and self._running_loop():
            self.status_check = self.sign_in_box.load(self._original.name)
        self._validate()

    def _provider_named(self, name: str) -> OAuthProviderConfig | None:
        return next((p for p in self._providers if p.name == name), None)

    def _fill_providers(self, select: str) -> None:
        """The providers of the chosen kind in the picker, *select* chosen (shown as not set up when unknown)."""
        kind = self.method()
        combo = self.provider_combo
        combo.blockSignals(True)
        try:
            combo.clear()
            if kind not in OAUTH_METHODS:
                return
            for provider in self._providers:
                if provider.kind == kind:
                    combo.addItem(provider.name, provider.name)
                    combo.setItemData(combo.count() - 1, self.tr("client ID %1").replace("%1", provider.client_id),
                                      Qt.ItemDataRole.ToolTipRole)
            if select and self._provider_named(select) is None:
                combo.addItem(self.tr("%1 (not set up)").replace("%1", select), select)
            combo.setCurrentIndex(max(combo.findData(select), 0) if combo.count() else -1)
        finally:
            combo.blockSignals(False)
        self._update_provider_buttons()
        self._validate()

    def selected_provider(self) -> OAuthProviderConfig | None:
        """The OAuth2 provider chosen in the picker, if it is set up."""
        if not self.uses_oauth() or self.provider_combo.currentIndex() < 0:
            return None
        return self._provider_named(str(self.provider_combo.currentData()))

    def _missing_provider(self) -> str:
        """The name in the picker that no provider has (an account naming a provider not set up), or ''."""
        name = self.provider_combo.currentData() if self.provider_combo.currentIndex() >= 0 else ""
        return str(name) if name and self._provider_named(str(name)) is None else ""

    def _provider_problem(self) -> str:
        if not self.uses_oauth():
            return ""
        missing = self._missing_provider()
        if missing:
            return self.tr("No OAuth2 provider called %1 is set up: choose another, or add it with New….") \
                .replace("%1", missing)
        if self.selected_provider() is None:
            return self.tr("Add the app registration this mailbox signs in with: press New….")
        return ""

    def _update_provider_buttons(self) -> None:
        self.edit_provider_button.setEnabled(self.selected_provider() is not None)

    def add_provider(self) -> QDialog:
        """Open the provider dialog for a new provider of the chosen kind."""
        from pop3gui.gui.dialogs.provider import ProviderDialog

        dialog = ProviderDialog(None, other_names=[p.name for p in self._providers], kind=self.method(),
                                kind_locked=True, parent=self)
        dialog.accepted.connect(lambda: self._provider_edited(None, dialog))
        dialog.open()
        return dialog

    def edit_provider(self) -> QDialog | None:
        """Open the provider dialog on the chosen provider (shared by every account that names it)."""
        from pop3gui.gui.dialogs.provider import ProviderDialog

        provider = self.selected_provider()
        if provider is None:
            return None
        dialog = ProviderDialog(provider, other_names=[p.name for p in self._providers if p is not provider],
                                kind=provider.kind, kind_locked=True, parent=self)
        dialog.accepted.connect(lambda: self._provider_edited(provider, dialog))
        dialog.open()
        return dialog

    def _provider_edited(self, old: OAuthProviderConfig | None, dialog: QDialog) -> None:
        from pop3gui.gui.dialogs.provider import ProviderDialog

        assert isinstance(dialog, ProviderDialog)
        new = dialog.provider()
        if old is None:
            self._providers.append(new)
        else:
            self._providers[self._providers.index(old)] = new
            if new.name != old.name:
                first = next((k for k, v in self._renames.items() if v == old.name), old.name)
                self._renames[first] = new.name
        secret = dialog.new_secret()
        if secret:
            self._store_secret(new.name, secret)
        self._fill_providers(new.name)

    def _store_secret(self, provider: str, secret: str) -> None:
        """An app-only provider's client secret goes to the keyring at once (it is never in the file)."""
        credentials = self._credentials
        if credentials is None or not self._running_loop():
            show_error(self.provider_error, self.tr("The client secret was not stored: no keyring to write to."))
            return

        async def store() -> bool:
            try:
                await asyncio.to_thread(credentials.set_oauth_client_secret, provider, secret)
            except CredentialError as exc:
                self.sign_in_box.show_error(self.tr("The client secret of %1 was not stored.").replace("%1", provider)
                                            + "\n" + exc.explain())
                return False
            return True

        self.secret_store = asyncio.ensure_future(store())

    def _sign_in_name(self) -> str:
        """The account name a sign-in is stored under: the saved name, or (new account) the name typed."""
        if self._original is not None:
            return self._original.name
        return self.name_edit.text().strip() if not self.name_error.text() else ""

    def sign_in(self) -> asyncio.Future[SignIn | None] | None:
        """Sign the account in in the browser (the Sign in… button); the window stays usable meanwhile."""
        provider = self.selected_provider()
        who = self._sign_in_name()
        if self._signer is None:
            return None
        if provider is None or not who:
            self.sign_in_box.show_error(self.tr("Enter the account's name and choose its provider first."))
            return None
        task = self.sign_in_box.start(who, provider)

        def done(fut: asyncio.Future[SignIn | None]) -> None:
            if not fut.cancelled() and fut.exception() is None and (record := fut.result()) is not None:
                self._sign_in_owner = who
                self.signed_in.emit(who, record)

        task.add_done_callback(done)
        return task

    def sign_out(self) -> asyncio.Future[bool] | None:
        """Forget the account's sign-in (the Sign out button)."""
        who = self._sign_in_owner or self._sign_in_name()
        if self._signer is None or not who:
            return None
        task = self.sign_in_box.sign_out(who)
        task.add_done_callback(lambda fut: self.signed_out.emit(who) if not fut.cancelled() else None)
        return task

    @staticmethod
    def _running_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

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
        method = self.method()
        provider = self.selected_provider()
        return replace(
            base,
            auth="oauth2" if method in OAUTH_METHODS else method,
            oauth_provider=(provider.name if provider is not None else self._missing_provider())
            if method in OAUTH_METHODS else "",
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
        """The password typed in, or None to keep the stored one (an OAuth2 account has none)."""
        return None if self.uses_oauth() else self.password_edit.text() or None

    def providers(self) -> tuple[OAuthProviderConfig, ...]:
        """The OAuth2 providers as added and edited here (all of them, not only this account's)."""
        return tuple(self._providers)

    def provider_renames(self) -> dict[str, str]:
        """Providers renamed here: their name when the dialog opened -> their name now."""
        return {old: new for old, new in self._renames.items() if old != new}

    def sign_in_owner(self) -> str | None:
        """The account name the shown sign-in is stored under (the name it had when it was signed in)."""
        return self._sign_in_owner

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
