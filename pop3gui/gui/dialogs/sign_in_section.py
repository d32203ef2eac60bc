"""How an account signs in: the method, the user name, and the password or the OAuth2 provider and sign-in.

The password is never read back from the keyring: the field only says (as
its placeholder) whether one is stored, and an empty field keeps the stored one.

An OAuth2 account (Microsoft 365 and Outlook.com, Google, or another
provider) names an OAuth2 provider - the app registration, shared by
accounts, added and edited here with **New…** and **Edit…** - and is signed in
once in the browser with **Sign in…**; the sign-in is kept in the keyring
under the account's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig
from pop3gui.core.errors import CredentialError
from pop3gui.core.oauth.store import SignIn
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.threads import in_lookup_thread
from pop3gui.gui.dialogs.fields import buddy, with_messages
from pop3gui.gui.dialogs.provider_picker import ProviderPicker, has_running_loop
from pop3gui.gui.dialogs.sign_in import PageOpener, SignInBox, Signer
from pop3gui.gui.tabs.base import field_error_label, show_error

__all__ = ["ADVANCED_METHODS", "IMAP_METHOD_NOTES", "METHODS", "METHOD_NOTES", "OAUTH_METHODS", "SignInSection"]

# How an account signs in: the key is the OAuth2 provider kind for the OAuth2 methods.
METHODS = (("password", "Password"), ("microsoft", "Microsoft 365 or Outlook.com"), ("google", "Google"),
           ("generic", "Other OAuth2 provider"))
ADVANCED_METHODS = (("apop", "APOP (password, never sent over the network)"),)
OAUTH_METHODS = frozenset({"microsoft", "google", "generic"})

METHOD_NOTES = {
    "microsoft": "Your Entra ID admin must register an app with POP.AccessAsUser.All and offline_access "
                 "(docs/oauth.md).",
    "google": "A Google Cloud OAuth client of type Desktop with the https://mail.google.com/ scope "
              "(docs/oauth.md); an app password may be simpler.",
    "generic": "The app registration at the provider: its client ID, authorization and token URLs and the "
               "scopes of mail access (docs/oauth.md).",
    "apop": "The server must offer APOP; the password is stored in the keyring as for Password.",
}
IMAP_METHOD_NOTES = {
    "microsoft": "Your Entra ID admin must register an app with IMAP.AccessAsUser.All and offline_access "
                 "(docs/oauth.md).",
}
"""The notes that differ for an IMAP account (APOP is a POP3 login: IMAP accounts do not offer it)."""


class SignInSection(QGroupBox):
    """The "Sign-in" group of the account dialog.

    ``providers`` are the configuration's OAuth2 providers; :meth:`providers`
    returns them as added and edited here.  ``signer`` signs the account in
    (without one the Sign in button is disabled) and ``open_page`` shows the
    sign-in page.  ``typed_name`` gives the name typed for a new account
    ('' while it is invalid): a new account's sign-in is stored under it.

    ``method_chosen`` is emitted when someone picks a sign-in method (before
    the section follows it); ``changed`` whenever what the dialog checks changed.
    """

    method_chosen = Signal(str)
    changed = Signal()
    signed_in = Signal(str, object)  # the account name it is stored under, SignIn
    signed_out = Signal(str)

    def __init__(self, account: AccountConfig | None, *, credentials: Credentials | None,
                 providers: Sequence[OAuthProviderConfig], signer: Signer | None, open_page: PageOpener | None,
                 typed_name: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Sign-in"))
        self._original = account
        self._credentials = credentials
        self._signer = signer
        self._open_page = open_page
        self._typed_name = typed_name
        self._protocol = account.protocol if account is not None else "pop3"
        self._sign_in_owner: str | None = account.name if account is not None else None
        self.password_check: asyncio.Future[bool] | None = None
        self.status_check: asyncio.Future[SignIn | None] | None = None
        self._build(providers)
        self._fill(account)
        self._connect()

    # --- building -----------------------------------------------------------------

    def _build(self, providers: Sequence[OAuthProviderConfig]) -> None:
        form = QFormLayout(self)
        self.method_combo = QComboBox()
        for key, label in METHODS:
            self.method_combo.addItem(self.tr(label), key)
        self._add_advanced_methods()
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

        self.provider_picker = picker = ProviderPicker(providers, self._credentials)
        self.provider_combo = picker.combo
        self.new_provider_button = picker.new_button
        self.edit_provider_button = picker.edit_button
        self.provider_error = picker.error_label
        self.provider_label = buddy(self.tr("Pr&ovider:"), self.provider_combo)
        self.provider_row = picker
        form.addRow(self.provider_label, self.provider_row)
        self.sign_in_box = SignInBox(self._signer, self._open_page)
        self.sign_in_label = QLabel(self.tr("Status:"))
        form.addRow(self.sign_in_label, self.sign_in_box)

    def _add_advanced_methods(self) -> None:
        """The POP3-only methods (APOP), after a separator."""
        self.method_combo.insertSeparator(self.method_combo.count())
        for key, label in ADVANCED_METHODS:
            self.method_combo.addItem(self.tr(label), key)

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or AccountConfig(name="", host="", username="")
        if self._protocol == "imap":
            self._remove_advanced_methods()
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(self._method_of(acc))))
        self.username_edit.setText(acc.username)
        self._fill_providers(acc.oauth_provider)

    def _method_of(self, acc: AccountConfig) -> str:
        if acc.auth != "oauth2":
            return acc.auth
        provider = self.provider_picker.named(acc.oauth_provider)
        return provider.kind if provider is not None else "generic"

    def _connect(self) -> None:
        self.username_edit.textChanged.connect(self.changed)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.provider_picker.changed.connect(self.changed)
        self.provider_picker.secret_error.connect(self.sign_in_box.show_error)
        self.sign_in_box.sign_in_button.clicked.connect(self.sign_in)
        self.sign_in_box.sign_out_button.clicked.connect(self.sign_out)

    def start(self) -> None:
        """Ask the keyring what is stored for the account (once the dialog is built)."""
        self._start_password_check()
        self._update_method()

    # --- the sign-in method -----------------------------------------------------------

    def method(self) -> str:
        """password, apop, or the kind of OAuth2 provider: microsoft, google, generic."""
        return str(self.method_combo.currentData())

    def uses_oauth(self) -> bool:
        return self.method() in OAUTH_METHODS

    def set_protocol(self, protocol: str) -> None:
        """The account's protocol was chosen: IMAP has no APOP (an APOP account turns to Password)."""
        if protocol == self._protocol:
            return
        self._protocol = protocol
        if protocol == "imap":
            if self.method() in dict(ADVANCED_METHODS):
                self.method_combo.setCurrentIndex(self.method_combo.findData("password"))
            self._remove_advanced_methods()
        else:
            self._add_advanced_methods()
        self._update_method()

    def _remove_advanced_methods(self) -> None:
        while self.method_combo.count() > len(METHODS):
            self.method_combo.removeItem(self.method_combo.count() - 1)

    def _method_changed(self) -> None:
        self.method_chosen.emit(self.method())
        self._fill_providers("")  # each OAuth2 method has providers of its own kind: the first is chosen
        self._update_method()

    def _update_method(self) -> None:
        method = self.method()
        oauth = method in OAUTH_METHODS
        notes = {**METHOD_NOTES, **IMAP_METHOD_NOTES} if self._protocol == "imap" else METHOD_NOTES
        note = notes.get(method, "")
        self.method_note.setText(self.tr(note) if note else "")
        self.method_note.setVisible(bool(note))
        for widget in (self.password_label, self.password_row):
            widget.setVisible(not oauth)
        for widget in (self.provider_label, self.provider_row, self.sign_in_label, self.sign_in_box):
            widget.setVisible(oauth)
        self.username_edit.setPlaceholderText(self.tr("the mailbox's address, e.g. alice@contoso.com") if oauth
                                              else "")
        if oauth and self.status_check is None and self._original is not None and has_running_loop():
            self.status_check = self.sign_in_box.load(self._original.name)
        self.changed.emit()

    # --- the OAuth2 provider (in its picker) --------------------------------------------

    def _fill_providers(self, select: str) -> None:
        """The providers of the chosen kind in the picker, *select* chosen (shown as not set up when unknown)."""
        self.provider_picker.fill(self.method(), select)

    def selected_provider(self) -> OAuthProviderConfig | None:
        """The OAuth2 provider chosen in the picker, if it is set up."""
        return self.provider_picker.selected() if self.uses_oauth() else None

    def add_provider(self) -> QDialog:
        """Open the provider dialog for a new provider of the chosen kind."""
        return self.provider_picker.add()

    def edit_provider(self) -> QDialog | None:
        """Open the provider dialog on the chosen provider (shared by every account that names it)."""
        return self.provider_picker.edit()

    @property
    def secret_store(self) -> asyncio.Future[bool] | None:
        """The last client secret being stored in the keyring."""
        return self.provider_picker.secret_store

    # --- signing in and out -------------------------------------------------------------

    def _sign_in_name(self) -> str:
        """The account name a sign-in is stored under: the saved name, or (new account) the name typed."""
        if self._original is not None:
            return self._original.name
        return self._typed_name()

    def sign_in(self) -> asyncio.Future[SignIn | None] | None:
        """Sign the account in in the browser (the Sign in… button); the window stays usable meanwhile."""
        provider = self.selected_provider()
        who = self._sign_in_name()
        if self._signer is None:
            return None
        if provider is None or not who:
            self.sign_in_box.show_error(self.tr("Enter the account's name and choose its provider first."))
            return None
        task = self.sign_in_box.start(who, provider, protocol=self._protocol)

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
            stored: bool = await in_lookup_thread(self._credentials.has_pop3_password, name)
        except CredentialError as exc:
            self.password_edit.setPlaceholderText(self.tr("keyring unavailable"))
            self.password_note.setText(f"{exc}\n{exc.fix}")
            self.password_note.show()
            return False
        self.password_edit.setPlaceholderText(self.tr("stored in keyring") if stored else
                                              self.tr("none stored yet: enter it"))
        return stored

    # --- checks and results ------------------------------------------------------------

    def validate(self) -> None:
        show_error(self.username_error,
                   "" if self.username_edit.text().strip() else
                   self.tr("Enter the mailbox's address, e.g. alice@contoso.com.") if self.uses_oauth() else
                   self.tr("Enter the user name the ISP gave you."))
        show_error(self.provider_error, self.provider_picker.problem() if self.uses_oauth() else "")

    def error_labels(self) -> list[QLabel]:
        return [self.username_error, self.provider_error]

    def apply_to(self, account: AccountConfig) -> AccountConfig:
        """*account* with the sign-in as entered (a provider not set up is kept until another is chosen)."""
        method = self.method()
        oauth = method in OAUTH_METHODS
        provider = self.selected_provider()
        return replace(account, auth="oauth2" if oauth else method,
                       oauth_provider=(provider.name if provider is not None else self.provider_picker.missing())
                       if oauth else "",
                       username=self.username_edit.text().strip())

    def new_password(self) -> str | None:
        """The password typed in, or None to keep the stored one (an OAuth2 account has none)."""
        return None if self.uses_oauth() else self.password_edit.text() or None

    def providers(self) -> tuple[OAuthProviderConfig, ...]:
        """The OAuth2 providers as added and edited here (all of them, not only this account's)."""
        return self.provider_picker.providers()

    def provider_renames(self) -> dict[str, str]:
        """Providers renamed here: their name when the dialog opened -> their name now."""
        return self.provider_picker.renames()

    def sign_in_owner(self) -> str | None:
        """The account name the shown sign-in is stored under (the name it had when it was signed in)."""
        return self._sign_in_owner
