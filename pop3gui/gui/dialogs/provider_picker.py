"""The OAuth2 provider an account signs in with: a picker with **New…** and **Edit…**.

The picker lists the configuration's providers of one kind (the sign-in
method chosen: Microsoft, Google, or another provider).  A provider added or
edited here is shared by every account that names it; :meth:`ProviderPicker.providers`
and :meth:`ProviderPicker.renames` say what changed.  An app-only provider's
client secret goes to the keyring at once (it is never in the file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from pop3gui.core.config.model import OAUTH_KINDS, OAuthProviderConfig
from pop3gui.core.errors import CredentialError
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.threads import in_lookup_thread
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error

__all__ = ["ProviderPicker", "has_running_loop"]


def has_running_loop() -> bool:
    """Whether an asyncio loop runs (the keyring is asked in the background only then)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ProviderPicker(QWidget):
    """The provider chooser with its New… and Edit… buttons, and its error message underneath.

    ``changed`` is emitted when the choice or the list changed; ``secret_error``
    with the message when a client secret could not be stored in the keyring.
    """

    changed = Signal()
    secret_error = Signal(str)

    def __init__(self, providers: Sequence[OAuthProviderConfig], credentials: Credentials | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._providers = list(providers)
        self._renames: dict[str, str] = {}
        self._credentials = credentials
        self._kind = ""
        self.secret_store: asyncio.Future[bool] | None = None

        # Laid out as a field with its messages underneath (fields.with_messages).
        self.combo = QComboBox()
        self.combo.setPlaceholderText(self.tr("none yet: press New…"))
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.new_button = QPushButton(icon("add"), self.tr("Ne&w…"))
        self.new_button.setAutoDefault(False)
        self.new_button.setToolTip(self.tr("Add the app registration (client ID) accounts sign in with"))
        self.edit_button = QPushButton(icon("edit"), self.tr("Edi&t…"))
        self.edit_button.setAutoDefault(False)
        provider_line = QWidget()
        line = QHBoxLayout(provider_line)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.combo, 1)
        line.addWidget(self.new_button)
        line.addWidget(self.edit_button)
        self.error_label = field_error_label()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(provider_line)
        layout.addWidget(self.error_label)

        self.combo.currentIndexChanged.connect(self.changed)
        self.combo.currentIndexChanged.connect(self._update_buttons)
        self.new_button.clicked.connect(self.add)
        self.edit_button.clicked.connect(self.edit)

    def named(self, name: str) -> OAuthProviderConfig | None:
        return next((p for p in self._providers if p.name == name), None)

    def fill(self, kind: str, select: str) -> None:
        """The providers of *kind*, *select* chosen (shown as not set up when unknown); none unless *kind* is
        an OAuth2 provider kind (the account signs in with a password)."""
        self._kind = kind
        combo = self.combo
        combo.blockSignals(True)
        try:
            combo.clear()
            if kind not in OAUTH_KINDS:
                return
            for provider in self._providers:
                if provider.kind == kind:
                    combo.addItem(provider.name, provider.name)
                    combo.setItemData(combo.count() - 1, self.tr("client ID %1").replace("%1", provider.client_id),
                                      Qt.ItemDataRole.ToolTipRole)
            if select and self.named(select) is None:
                combo.addItem(self.tr("%1 (not set up)").replace("%1", select), select)
            combo.setCurrentIndex(max(combo.findData(select), 0) if combo.count() else -1)
        finally:
            combo.blockSignals(False)
        self._update_buttons()
        self.changed.emit()

    def selected(self) -> OAuthProviderConfig | None:
        """The provider chosen, if it is set up."""
        if self.combo.currentIndex() < 0:
            return None
        return self.named(str(self.combo.currentData()))

    def missing(self) -> str:
        """The name chosen that no provider has (an account naming a provider not set up), or ''."""
        name = self.combo.currentData() if self.combo.currentIndex() >= 0 else ""
        return str(name) if name and self.named(str(name)) is None else ""

    def problem(self) -> str:
        """Why no usable provider is chosen ('' when one is)."""
        missing = self.missing()
        if missing:
            return self.tr("No OAuth2 provider called %1 is set up: choose another, or add it with New….") \
                .replace("%1", missing)
        if self.selected() is None:
            return self.tr("Add the app registration this mailbox signs in with: press New….")
        return ""

    def _update_buttons(self) -> None:
        self.edit_button.setEnabled(self.selected() is not None)

    def add(self) -> QDialog:
        """Open the provider dialog for a new provider of the kind shown."""
        from pop3gui.gui.dialogs.provider import ProviderDialog

        dialog = ProviderDialog(None, other_names=[p.name for p in self._providers], kind=self._kind,
                                kind_locked=True, parent=self.window())
        dialog.accepted.connect(lambda: self._edited(None, dialog))
        dialog.open()
        return dialog

    def edit(self) -> QDialog | None:
        """Open the provider dialog on the chosen provider (shared by every account that names it)."""
        from pop3gui.gui.dialogs.provider import ProviderDialog

        provider = self.selected()
        if provider is None:
            return None
        dialog = ProviderDialog(provider, other_names=[p.name for p in self._providers if p is not provider],
                                kind=provider.kind, kind_locked=True, parent=self.window())
        dialog.accepted.connect(lambda: self._edited(provider, dialog))
        dialog.open()
        return dialog

    def _edited(self, old: OAuthProviderConfig | None, dialog: QDialog) -> None:
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
        self.fill(self._kind, new.name)

    def _store_secret(self, provider: str, secret: str) -> None:
        """An app-only provider's client secret goes to the keyring at once (it is never in the file)."""
        credentials = self._credentials
        if credentials is None or not has_running_loop():
            show_error(self.error_label, self.tr("The client secret was not stored: no keyring to write to."))
            return

        async def store() -> bool:
            try:
                await in_lookup_thread(credentials.set_oauth_client_secret, provider, secret)
            except CredentialError as exc:
                self.secret_error.emit(self.tr("The client secret of %1 was not stored.").replace("%1", provider)
                                       + "\n" + exc.explain())
                return False
            return True

        self.secret_store = asyncio.ensure_future(store())

    def providers(self) -> tuple[OAuthProviderConfig, ...]:
        """The providers as added and edited here (of every kind)."""
        return tuple(self._providers)

    def renames(self) -> dict[str, str]:
        """Providers renamed here: their name when the picker was made -> their name now."""
        return {old: new for old, new in self._renames.items() if old != new}
