"""The properties of one mail account (POP3 or IMAP): server, sign-in, folders, where its mail goes.

Every input is checked as it is typed and the reason is shown under the
field; OK stays disabled while anything is invalid.  The dialog is made of
its sections: the name, the server and its protocol
(:class:`~pop3gui.gui.dialogs.server_section.ServerSection`), the sign-in
(:class:`~pop3gui.gui.dialogs.sign_in_section.SignInSection`: the password,
or the OAuth2 provider and the sign-in in the browser), for an IMAP account
its folders (:class:`~pop3gui.gui.dialogs.imap_section.ImapSection`), the
delivery and the options (:mod:`~pop3gui.gui.dialogs.delivery_section`).
The password is never read back from the keyring; an OAuth2 sign-in is kept
in the keyring under the account's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from PySide6.QtCore import Signal

from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig, RoutingRuleConfig
from pop3gui.core.engine.findings import Finding
from pop3gui.core.oauth.store import SignIn
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.state.credentials import Credentials
from pop3gui.gui.dialogs.delivery_section import DeliverySection, OptionsSection
from pop3gui.gui.dialogs.fields import buddy, with_messages
from pop3gui.gui.dialogs.imap_section import ImapSection
from pop3gui.gui.dialogs.server_section import ServerSection
from pop3gui.gui.dialogs.sign_in import PageOpener, Signer
from pop3gui.gui.dialogs.sign_in_section import SignInSection
from pop3gui.gui.tabs.base import field_error_label, show_error

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
        self._check = check
        self._shown = False
        self.setWindowTitle(self.tr("Account Properties") if account else self.tr("New Account"))
        self._build(account, rules, credentials, providers, signer, open_page)
        self._fill(account)
        if server_folders:
            self.imap_section.show_server_folders(server_folders)
        self._connect()
        self._validate()
        self.sign_in_section.start()

    # --- building ---------------------------------------------------------------

    def _build(self, account: AccountConfig | None, rules: Sequence[RoutingRuleConfig],
               credentials: Credentials | None, providers: Sequence[OAuthProviderConfig], signer: Signer | None,
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

        self.delivery_section = delivery = DeliverySection(
            account, local_domains=self._local_domains, rules=rules,
            rules_name=lambda: self.name_edit.text().strip() or (account.name if account else ""))
        # The delivery fields, as the dialog's own (callers and tests use them).
        self.kind_combo = delivery.kind_combo
        self.deliver_edit = delivery.deliver_edit
        self.deliver_error = delivery.deliver_error
        self.deliver_warning = delivery.deliver_warning
        self.headers_edit = delivery.headers_edit
        self.headers_error = delivery.headers_error
        self.rules_button = delivery.rules_button
        self.rules_summary = delivery.rules_summary
        outer.addWidget(delivery)

        self.options_section = options = OptionsSection(account)
        # The options, as the dialog's own (callers and tests use them).
        self.leave_check = options.leave_check
        self.delete_days_spin = options.delete_days_spin
        self.delete_days_label = options.delete_days_label
        self.enabled_check = options.enabled_check
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
        self.imap_section.setVisible(self.protocol() == "imap")
        self._update_leave()

    def _connect(self) -> None:
        self.name_edit.textChanged.connect(self._validate)
        self.server_section.changed.connect(self._validate)
        self.server_section.protocol_changed.connect(self._protocol_changed)
        self.imap_section.changed.connect(self._validate)
        self.imap_section.after_delivery_changed.connect(self._update_leave)
        self.delivery_section.changed.connect(self._validate)  # which fits the height to the rows now shown
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
        """The options follow what becomes of delivered mail: IMAP's after delivery, or deleted for POP3."""
        self.options_section.set_after_delivery(self.imap_section.after_delivery() if self.is_imap() else "delete")

    def is_global(self) -> bool:
        return self.delivery_section.is_global()

    def envelope_headers(self) -> tuple[str, ...]:
        return self.delivery_section.envelope_headers()

    def problems(self) -> list[str]:
        """What is invalid right now (the same texts as shown next to the fields)."""
        return [label.text() for label in self._error_labels() if label.text()]

    def _error_labels(self) -> list[QLabel]:
        return [self.name_error, *self.server_section.error_labels(), *self.sign_in_section.error_labels(),
                *self.imap_section.error_labels(), *self.delivery_section.error_labels()]

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
        self.delivery_section.validate()
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

    # --- rules (in the delivery section) ----------------------------------------------

    def edit_rules(self) -> None:
        """Open the routing rules dialog (the Routing Rules… button)."""
        self.delivery_section.edit_rules()

    # --- results ----------------------------------------------------------------------

    def account(self) -> AccountConfig:
        """The account as entered (fields this dialog does not show are kept from the original)."""
        base = self._original or AccountConfig(name="", host="", username="")
        account = replace(base, name=self.name_edit.text().strip())
        for section in (self.server_section, self.sign_in_section, self.delivery_section, self.options_section):
            account = section.apply_to(account)
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
        return self.delivery_section.routing_rules(self.name_edit.text().strip())

    def accept(self) -> None:
        self._validate()
        if self.problems():
            return
        super().accept()


__all__ = ["AccountDialog"]
