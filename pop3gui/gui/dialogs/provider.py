"""An OAuth2 provider: the app registration at Microsoft, Google or another sign-in service.

Several accounts may share one provider.  The dialog edits one
:class:`~pop3gui.core.config.model.OAuthProviderConfig`; what it returns goes
into the configuration's ``[[oauth_provider]]`` list when the properties
window saves.  An app-only provider's client secret is never read back: the
field only takes a new one, for the keyring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import urlsplit

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import OAuthProviderConfig
from pop3gui.core.oauth.endpoints import endpoints
from pop3gui.gui.dialogs.fields import buddy, with_messages
from pop3gui.gui.tabs.base import field_error_label, show_error

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
KIND_LABELS = (("microsoft", "Microsoft 365 or Outlook.com (Entra ID)"), ("google", "Google"),
               ("generic", "Other OAuth2 provider"))


def url_problem(obj: QWidget, text: str, *, required: bool) -> str:
    """Why *text* is not a usable endpoint URL ('' when it is, or when it may stay empty)."""
    text = text.strip()
    if not text:
        return obj.tr("Enter the URL.") if required else ""
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in text):
        return obj.tr("Expected a web address, e.g. https://login.example.com/oauth2/token.")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        return obj.tr("Codes and tokens travel over this address: use the provider's https:// address.")
    return ""


class ProviderDialog(QDialog):
    """Add or edit one OAuth2 provider; ``provider()`` and ``new_secret()`` after OK.

    ``kind`` preselects the kind of a new provider; ``kind_locked`` keeps it (the
    account dialog asks for a provider of the sign-in method chosen there).
    """

    def __init__(self, provider: OAuthProviderConfig | None = None, *, other_names: Iterable[str] = (),
                 kind: str = "generic", kind_locked: bool = False, secret_stored: bool | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = provider
        self._other_names = {n.casefold() for n in other_names}
        self._secret_stored = secret_stored
        self.setWindowTitle(self.tr("OAuth2 Provider") if provider else self.tr("New OAuth2 Provider"))
        self._build()
        self._fill(provider or OAuthProviderConfig(name="", client_id="", kind=kind))
        self.kind_combo.setEnabled(not kind_locked)
        for edit in (self.name_edit, self.client_edit, self.tenant_edit, self.authorize_edit, self.token_edit,
                     self.device_edit, self.scopes_edit):
            edit.textChanged.connect(self._validate)
        self.kind_combo.currentIndexChanged.connect(self._update_kind)
        self.app_only_check.toggled.connect(self._update_kind)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._update_kind()

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(self.tr("e.g. contoso-entra"))
        self.name_error = field_error_label()
        form.addRow(buddy(self.tr("&Name:"), self.name_edit), with_messages(self.name_edit, self.name_error))
        self.kind_combo = QComboBox()
        for kind, label in KIND_LABELS:
            self.kind_combo.addItem(self.tr(label), kind)
        form.addRow(buddy(self.tr("&Kind:"), self.kind_combo), self.kind_combo)
        self.client_edit = QLineEdit()
        self.client_edit.setPlaceholderText(self.tr("the Application (client) ID of the app registration"))
        self.client_error = field_error_label()
        form.addRow(buddy(self.tr("&Client ID:"), self.client_edit), with_messages(self.client_edit,
                                                                                   self.client_error))
        self.tenant_edit = QLineEdit()
        self.tenant_edit.setPlaceholderText(self.tr("common"))
        self.tenant_edit.setToolTip(self.tr("The tenant's domain or Directory (tenant) ID; \"organizations\" for any "
                                            "work account, \"consumers\" for Outlook.com only, \"common\" for both."))
        self.tenant_error = field_error_label()
        self.tenant_label = buddy(self.tr("&Tenant:"), self.tenant_edit)
        self.tenant_row = with_messages(self.tenant_edit, self.tenant_error)
        form.addRow(self.tenant_label, self.tenant_row)
        self.authorize_edit = QLineEdit()
        self.authorize_error = field_error_label()
        self.token_edit = QLineEdit()
        self.token_error = field_error_label()
        self.device_edit = QLineEdit()
        self.device_edit.setPlaceholderText(self.tr("optional: for sign-in with a code on another device"))
        self.device_error = field_error_label()
        self._url_rows: list[QWidget] = []
        for text, edit, error in ((self.tr("&Authorization URL:"), self.authorize_edit, self.authorize_error),
                                  (self.tr("T&oken URL:"), self.token_edit, self.token_error),
                                  (self.tr("&Device code URL:"), self.device_edit, self.device_error)):
            url_label = buddy(text, edit)
            url_row = with_messages(edit, error)
            form.addRow(url_label, url_row)
            self._url_rows.extend((url_label, url_row))
        self.scopes_edit = QLineEdit()
        self.scopes_edit.setToolTip(self.tr("Permissions to ask for, separated by spaces; empty: the usual ones of "
                                            "the kind (include offline_access where the provider wants it)."))
        self.scopes_error = field_error_label()
        form.addRow(buddy(self.tr("&Scopes:"), self.scopes_edit), with_messages(self.scopes_edit,
                                                                                self.scopes_error))
        self.app_only_check = QCheckBox(self.tr("Sign in as the a&pp itself (client secret, no user)"))
        self.app_only_check.setToolTip(self.tr("For Microsoft's POP.AccessAsApp: the app reads the mailboxes it "
                                               "was granted, with its client secret instead of a user's sign-in."))
        form.addRow("", self.app_only_check)
        self.secret_edit = QLineEdit()
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_label = buddy(self.tr("Client s&ecret:"), self.secret_edit)
        form.addRow(self.secret_label, self.secret_edit)
        outer.addLayout(form)
        outer.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setDefault(True)
        outer.addWidget(self.buttons)
        self.setMinimumWidth(520)

    def _fill(self, provider: OAuthProviderConfig) -> None:
        self.name_edit.setText(provider.name)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(provider.kind)))
        self.client_edit.setText(provider.client_id)
        self.tenant_edit.setText("" if provider.tenant == "common" else provider.tenant)
        self.authorize_edit.setText(provider.authorize_url)
        self.token_edit.setText(provider.token_url)
        self.device_edit.setText(provider.device_url)
        self.scopes_edit.setText(" ".join(provider.scopes))
        self.app_only_check.setChecked(provider.app_only)
        if self._secret_stored:
            self.secret_edit.setPlaceholderText(self.tr("stored in keyring; leave empty to keep it"))
        else:
            self.secret_edit.setPlaceholderText(self.tr("from the app registration's Certificates & secrets"))

    def kind(self) -> str:
        return str(self.kind_combo.currentData())

    def _update_kind(self) -> None:
        kind = self.kind()
        for widget in (self.tenant_label, self.tenant_row):
            widget.setVisible(kind == "microsoft")
        for widget in self._url_rows:
            widget.setVisible(kind == "generic")
        defaults = endpoints(OAuthProviderConfig(name="", client_id="", kind=kind,
                                                 app_only=self.app_only_check.isChecked())).scopes
        self.scopes_edit.setPlaceholderText(self.tr("default: %1").replace("%1", " ".join(defaults)) if defaults
                                            else self.tr("e.g. mail offline_access"))
        app_only = self.app_only_check.isChecked()
        self.secret_label.setVisible(app_only)
        self.secret_edit.setVisible(app_only)
        self._validate()

    def problems(self) -> list[str]:
        """What is invalid right now (the same texts as shown next to the fields)."""
        labels = (self.name_error, self.client_error, self.tenant_error, self.authorize_error, self.token_error,
                  self.device_error, self.scopes_error)
        return [label.text() for label in labels if label.text()]

    def _validate(self) -> None:
        name = self.name_edit.text().strip()
        show_error(self.name_error,
                   self.tr("Enter a name for this provider.") if not name else
                   self.tr("Another provider is already called %1.").replace("%1", name)
                   if name.casefold() in self._other_names else
                   self.tr("At most 100 printable characters.")
                   if len(name) > 100 or any(ord(c) < 32 for c in name) else "")
        client = self.client_edit.text().strip()
        show_error(self.client_error,
                   self.tr("Enter the app registration's client ID.") if not client else
                   self.tr("A client ID has no spaces.") if any(c.isspace() for c in client) else "")
        kind = self.kind()
        tenant = self.tenant_edit.text().strip()
        show_error(self.tenant_error, self.tr("A tenant has no spaces or slashes.")
                   if kind == "microsoft" and any(c.isspace() or c == "/" for c in tenant) else "")
        generic = kind == "generic"
        show_error(self.authorize_error, url_problem(self, self.authorize_edit.text(),
                                                     required=not self.app_only_check.isChecked())
                   if generic else "")
        show_error(self.token_error, url_problem(self, self.token_edit.text(), required=True) if generic else "")
        show_error(self.device_error, url_problem(self, self.device_edit.text(), required=False) if generic else "")
        show_error(self.scopes_error, self.tr("Enter the permissions the provider's mail access needs.")
                   if generic and not self.scopes_edit.text().strip() else "")
        self.ok_button.setEnabled(not self.problems())

    def provider(self) -> OAuthProviderConfig:
        """The provider as entered; the URLs of another kind are not kept."""
        base = self._original or OAuthProviderConfig(name="", client_id="")
        kind = self.kind()
        generic = kind == "generic"
        return replace(
            base,
            name=self.name_edit.text().strip(),
            client_id=self.client_edit.text().strip(),
            kind=kind,
            tenant=(self.tenant_edit.text().strip() or "common") if kind == "microsoft" else "common",
            authorize_url=self.authorize_edit.text().strip() if generic else "",
            token_url=self.token_edit.text().strip() if generic else "",
            device_url=self.device_edit.text().strip() if generic else "",
            scopes=tuple(self.scopes_edit.text().split()),
            app_only=self.app_only_check.isChecked(),
        )

    def new_secret(self) -> str | None:
        """The client secret typed in (app-only providers), or None to keep the stored one."""
        return self.secret_edit.text() or None if self.app_only_check.isChecked() else None

    def accept(self) -> None:
        self._validate()
        if self.problems():
            return
        super().accept()


__all__ = ["KIND_LABELS", "ProviderDialog", "url_problem"]
