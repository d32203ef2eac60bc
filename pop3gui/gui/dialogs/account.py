"""The properties of one mail account (POP3 or IMAP): server, sign-in, folders, where its mail goes.

Every input is checked as it is typed and the reason is shown under the
field; OK stays disabled while anything is invalid.  The dialog is made of
its sections: the name, the server and its protocol
(:class:`~pop3gui.gui.dialogs.server_section.ServerSection`), the sign-in
(:class:`~pop3gui.gui.dialogs.sign_in_section.SignInSection`: the password,
or the OAuth2 provider and the sign-in in the browser), for an IMAP account
its folders (:class:`~pop3gui.gui.dialogs.imap_section.ImapSection`), the
delivery and the options.  The password is never read back from the keyring;
an OAuth2 sign-in is kept in the keyring under the account's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from PySide6.QtCore import Signal

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

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig, RoutingRuleConfig
from pop3gui.core.engine.findings import Finding
from pop3gui.core.oauth.store import SignIn
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.state.credentials import Credentials
from pop3gui.gui.dialogs.fields import address_problem, buddy, field_warning_label, policy_warning, with_messages
from pop3gui.gui.dialogs.imap_section import ImapSection
from pop3gui.gui.dialogs.server_section import ServerSection
from pop3gui.gui.dialogs.sign_in import PageOpener, Signer
from pop3gui.gui.dialogs.sign_in_section import SignInSection
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error

_HEADER_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}

MailboxCheck = Callable[[AccountConfig, "str | None"], Awaitable[Finding]]
"""Logs in to an account as entered (the password typed in, or None for the stored one) as the Test does;
returns the account's finding (an IMAP account's carries the server's folders)."""


class AccountDialog(QDialog):
    """Add or edit one account; ``account()`` and ``new_password()`` after OK.

    ``rules`` are the routing rules of this account (for a global mailbox);
    ``routing_rules()`` returns them as edited with **Routing Rules…**.
    ``providers`` are the configuration's OAuth2 providers; ``providers()``
    returns them as added and edited here.  ``signer`` signs the account in
    (the connector's controller; without one the Sign in button is disabled)
    and ``open_page`` shows the sign-in page (the desktop's browser by default).
    ``check`` logs in to the account as entered, for **List Server Folders**
    (without one that button is disabled); ``server_folders`` are the folders
    the server listed at the last Test, if any.
    """

    signed_in = Signal(str, object)  # the account name it is stored under, SignIn
    signed_out = Signal(str)

    def __init__(self, account: AccountConfig | None = None, *, other_names: Iterable[str] = (),
                 local_domains: Iterable[str] = (), rules: Sequence[RoutingRuleConfig] = (),
                 credentials: Credentials | None = None, providers: Sequence[OAuthProviderConfig] = (),
                 signer: Signer | None = None, open_page: PageOpener | None = None,
                 check: MailboxCheck | None = None, server_folders: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = account
        self._other_names = {n.casefold() for n in other_names}
        self._local_domains = LocalDomains(local_domains, skip_invalid=True)
        self._rules = list(rules)
        self._check = check
        self._shown = False
        self.setWindowTitle(self.tr("Account Properties") if account else self.tr("New Account"))
        self._build(account, credentials, providers, signer, open_page)
        self._fill(account)
        if server_folders:
            self.imap_section.show_server_folders(server_folders)
        self._connect()
        self._validate()
        self.sign_in_section.start()

    # --- building ---------------------------------------------------------------

    def _build(self, account: AccountConfig | None, credentials: Credentials | None,
               providers: Sequence[OAuthProviderConfig], signer: Signer | None,
               open_page: PageOpener | None) -> None:
        outer = QVBoxLayout(self)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(self.tr("e.g. Alice at the ISP"))
        self.name_error = field_error_label()
        top = QFormLayout()
        top.addRow(buddy(self.tr("&Name:"), self.name_edit), with_messages(self.name_edit, self.name_error))
        outer.addLayout(top)

        self.server_section = server = ServerSection(account)
        # The server's fields, as the dialog's own (callers and tests use them).
        self.protocol_combo = server.protocol_combo
        self.host_edit = server.host_edit
        self.host_error = server.host_error
        self.security_combo = server.security_combo
        self.security_warning = server.security_warning
        self.port_spin = server.port_spin
        self.verify_check = server.verify_check
        self.verify_warning = server.verify_warning
        outer.addWidget(server)

        self.sign_in_section = signin = SignInSection(
            account, credentials=credentials, providers=providers, signer=signer, open_page=open_page,
            typed_name=lambda: self.name_edit.text().strip() if not self.name_error.text() else "")
        # The sign-in's fields, as the dialog's own (callers and tests use them).
        self.method_combo = signin.method_combo
        self.method_note = signin.method_note
        self.username_edit = signin.username_edit
        self.password_edit = signin.password_edit
        self.password_label = signin.password_label
        self.provider_combo = signin.provider_combo
        self.new_provider_button = signin.new_provider_button
        self.edit_provider_button = signin.edit_provider_button
        self.provider_error = signin.provider_error
        self.sign_in_box = signin.sign_in_box
        outer.addWidget(signin)

        self.imap_section = imap = ImapSection(account, check=self._check_mailbox if self._check else None)
        # The IMAP fields, as the dialog's own (callers and tests use them).
        self.folder_list = imap.folder_list
        self.folders_view = imap.folders_view
        self.folders_error = imap.folders_error
        self.folders_status = imap.folders_status
        self.list_folders_button = imap.list_button
        self.after_combo = imap.after_combo
        self.move_combo = imap.move_combo
        self.move_error = imap.move_error
        self.idle_check = imap.idle_check
        outer.addWidget(imap)

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

    def _fit_height(self, *, shrink: bool = False) -> None:
        """Grow when message labels appear: word-wrapped text needs height-for-width.

        Only with *shrink* (the dialog is built, a section came or went) does it also lose height it no
        longer needs; otherwise a height the user gave it stays.
        """
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else \
            layout.totalMinimumSize().height()
        if self.height() < needed or (shrink and self.height() > needed):
            self.resize(self.width(), needed)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        first, self._shown = not self._shown, True
        self._fit_height(shrink=first)  # the height the shown sections need (they are sized for real only now)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit_height()

    def _fill(self, account: AccountConfig | None) -> None:
        """The fields of the dialog itself (each section fills its own)."""
        acc = account or AccountConfig(name="", host="", username="")
        self.name_edit.setText(acc.name)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(acc.kind)))
        self.deliver_edit.setText(acc.deliver_to)
        self.headers_edit.setText(", ".join(acc.envelope_headers))
        self.leave_check.setChecked(acc.leave_on_server)
        self.delete_days_spin.setValue(acc.delete_after_days)
        self.enabled_check.setChecked(acc.enabled)
        self.imap_section.setVisible(self.protocol() == "imap")
        self._update_kind()
        self._update_leave()
        self._update_rules_summary()

    def _connect(self) -> None:
        for edit in (self.name_edit, self.deliver_edit, self.headers_edit):
            edit.textChanged.connect(self._validate)
        self.server_section.changed.connect(self._validate)
        self.server_section.protocol_changed.connect(self._protocol_changed)
        self.imap_section.changed.connect(self._validate)
        self.imap_section.after_delivery_changed.connect(self._update_leave)
        self.kind_combo.currentIndexChanged.connect(self._update_kind)
        self.kind_combo.currentIndexChanged.connect(self._validate)
        self.kind_combo.currentIndexChanged.connect(self._fit_height)
        self.leave_check.toggled.connect(self._update_leave)
        self.rules_button.clicked.connect(self.edit_rules)
        self.sign_in_section.method_chosen.connect(self.server_section.use_preset)
        self.sign_in_section.changed.connect(self._validate)
        self.sign_in_section.signed_in.connect(self.signed_in)
        self.sign_in_section.signed_out.connect(self.signed_out)
        self.sign_in_box.changed.connect(self._fit_height)
        self.finished.connect(self.sign_in_box.cancel)  # a sign-in still waiting for the browser ends with the dialog
        self.finished.connect(self.imap_section.cancel)  # so does a listing of the server's folders
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    # --- behaviour ----------------------------------------------------------------

    def _update_kind(self) -> None:
        is_global = self.kind_combo.currentData() == "global"
        self.deliver_label.setVisible(not is_global)
        self.deliver_row.setVisible(not is_global)
        self.headers_label.setVisible(is_global)
        self.headers_row.setVisible(is_global)
        self.rules_button.setVisible(is_global)

    def protocol(self) -> str:
        """pop3 or imap."""
        return self.server_section.protocol()

    def is_imap(self) -> bool:
        return self.protocol() == "imap"

    def _protocol_changed(self, protocol: str) -> None:
        self.sign_in_section.set_protocol(protocol)
        self.imap_section.setVisible(protocol == "imap")
        self._update_leave()
        self._validate()
        self._fit_height(shrink=True)

    def _update_leave(self) -> None:
        """The options say *when* handled mail leaves the server; for IMAP, after delivery says how (or never)."""
        after = self.imap_section.after_delivery() if self.is_imap() else "delete"
        if after == "move":
            self.leave_check.setText(self.tr("&Leave delivered messages in their folder for a while"))
            self.delete_days_label.setText(self.tr("   Move them to the folder &after:"))
        else:
            self.leave_check.setText(self.tr("&Leave a copy of the messages on the server"))
            self.delete_days_label.setText(self.tr("   Delete from the server &after:"))
        kept = after == "keep"
        self.leave_check.setEnabled(not kept)
        self.leave_check.setToolTip(self.tr("After delivery is Keep on the server: delivered mail is never "
                                            "deleted or moved.") if kept else "")
        self.delete_days_spin.setEnabled(self.leave_check.isChecked() and not kept)
        self.delete_days_label.setEnabled(self.leave_check.isChecked() and not kept)

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
        return [self.name_error, *self.server_section.error_labels(), *self.sign_in_section.error_labels(),
                *self.imap_section.error_labels(), self.deliver_error, self.headers_error]

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
        self.server_section.validate()
        self.sign_in_section.validate()
        if self.is_imap():
            self.imap_section.validate()
        else:
            for label in self.imap_section.error_labels():
                show_error(label, "")

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

    # --- the sign-in (in its section) ---------------------------------------------------

    @property
    def password_check(self) -> asyncio.Future[bool] | None:
        """Whether a password is stored (read from the keyring when the dialog opens)."""
        return self.sign_in_section.password_check

    @property
    def status_check(self) -> asyncio.Future[SignIn | None] | None:
        """The stored sign-in of an OAuth2 account (read from the keyring when it is shown)."""
        return self.sign_in_section.status_check

    @property
    def secret_store(self) -> asyncio.Future[bool] | None:
        """The last client secret being stored in the keyring."""
        return self.sign_in_section.secret_store

    def method(self) -> str:
        """password, apop, or the kind of OAuth2 provider: microsoft, google, generic."""
        return self.sign_in_section.method()

    def uses_oauth(self) -> bool:
        return self.sign_in_section.uses_oauth()

    def selected_provider(self) -> OAuthProviderConfig | None:
        """The OAuth2 provider chosen in the picker, if it is set up."""
        return self.sign_in_section.selected_provider()

    def add_provider(self) -> QDialog:
        """Open the provider dialog for a new provider of the chosen kind."""
        return self.sign_in_section.add_provider()

    def edit_provider(self) -> QDialog | None:
        """Open the provider dialog on the chosen provider (shared by every account that names it)."""
        return self.sign_in_section.edit_provider()

    def sign_in(self) -> asyncio.Future[SignIn | None] | None:
        """Sign the account in in the browser (the Sign in… button); the window stays usable meanwhile."""
        return self.sign_in_section.sign_in()

    def sign_out(self) -> asyncio.Future[bool] | None:
        """Forget the account's sign-in (the Sign out button)."""
        return self.sign_in_section.sign_out()

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
        account = replace(
            base,
            name=self.name_edit.text().strip(),
            kind="global" if is_global else "user",
            deliver_to="" if is_global else self.deliver_edit.text().strip(),
            envelope_headers=self.envelope_headers() if is_global else base.envelope_headers,
            leave_on_server=self.leave_check.isChecked(),
            delete_after_days=self.delete_days_spin.value() if self.leave_check.isChecked() else 0,
            enabled=self.enabled_check.isChecked(),
        )
        account = self.sign_in_section.apply_to(self.server_section.apply_to(account))
        if self.is_imap():
            return self.imap_section.apply_to(account)
        defaults = AccountConfig(name="", host="", username="")  # a POP3 account has no folders
        return replace(account, folders=defaults.folders, after_delivery=defaults.after_delivery,
                       move_to=defaults.move_to, idle=defaults.idle)

    def _check_mailbox(self) -> Awaitable[Finding]:
        """Log in to the account as entered (List Server Folders); the stored secrets go by the saved name."""
        assert self._check is not None
        original = self._original.name if self._original is not None else ""
        name = self.sign_in_owner() or original or self.name_edit.text().strip() or "new account"
        return self._check(replace(self.account(), name=name), self.new_password())

    def list_server_folders(self) -> asyncio.Future[Finding | None] | None:
        """Log in as the Test does and show the server's folders (the List Server Folders button)."""
        return self.imap_section.list_server_folders()

    def new_password(self) -> str | None:
        """The password typed in, or None to keep the stored one (an OAuth2 account has none)."""
        return self.sign_in_section.new_password()

    def providers(self) -> tuple[OAuthProviderConfig, ...]:
        """The OAuth2 providers as added and edited here (all of them, not only this account's)."""
        return self.sign_in_section.providers()

    def provider_renames(self) -> dict[str, str]:
        """Providers renamed here: their name when the dialog opened -> their name now."""
        return self.sign_in_section.provider_renames()

    def sign_in_owner(self) -> str | None:
        """The account name the shown sign-in is stored under (the name it had when it was signed in)."""
        return self.sign_in_section.sign_in_owner()

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
