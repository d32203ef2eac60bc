"""The keyring entries of the accounts the Mail Accounts page edits.

A password goes to the keyring as soon as it is entered; a renamed account
keeps its password and its OAuth2 sign-in (both are keyed by the account's
name).  The keyring is asked in a worker thread; when it refuses, a message
box says what was not kept, with the cause and the fix.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from pop3gui.core.errors import CredentialError, Pop3guiError
from pop3gui.core.threads import in_lookup_thread

__all__ = ["AccountKeyring"]


class AccountKeyring(QObject):
    """Stores and carries over the accounts' secrets through ``controller``; each call says whether it worked.

    Message boxes open over *page*.
    """

    def __init__(self, controller: Any, page: QWidget) -> None:
        super().__init__(page)
        self.controller = controller
        self._page = page

    async def store_password(self, name: str, password: str) -> bool:
        try:
            await in_lookup_thread(self.controller.credentials.set_pop3_password, name, password)
        except CredentialError as exc:
            self.show_error(self.tr("The password of %1 was not stored.").replace("%1", name), exc)
            return False
        return True

    async def copy_password(self, old: str, new: str) -> bool:
        """A renamed account keeps its password: the keyring entry is keyed by the name."""
        credentials = self.controller.credentials

        def copy() -> None:
            if credentials.has_pop3_password(old):
                credentials.set_pop3_password(new, credentials.pop3_password(old))

        try:
            await in_lookup_thread(copy)
        except CredentialError as exc:
            self.show_error(
                self.tr("The password of %1 could not be kept for its new name %2; enter it again.")
                .replace("%1", old).replace("%2", new), exc)
            return False
        return True

    async def copy_sign_in(self, old: str, new: str) -> bool:
        """A renamed account keeps its OAuth2 sign-in (the keyring keeps it under the account's name)."""
        try:
            await self.controller.copy_sign_in(old, new)
        except Pop3guiError as exc:
            self.show_error(
                self.tr("The sign-in of %1 could not be kept for its new name %2; sign in again.")
                .replace("%1", old).replace("%2", new), exc)
            return False
        return True

    def show_error(self, title: str, exc: Pop3guiError) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Keyring"), title, QMessageBox.StandardButton.Ok,
                          self._page)
        details = [str(exc)]
        if exc.cause:
            details.append(self.tr("Cause: %1").replace("%1", exc.cause))
        if exc.fix:
            details.append(self.tr("Fix: %1").replace("%1", exc.fix))
        box.setInformativeText("\n\n".join(details))
        box.setObjectName("credentialError")
        box.open()
        return box
