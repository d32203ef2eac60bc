"""Signing an account in with OAuth2 from its properties: who is signed in, Sign in…, Cancel, Sign out.

The sign-in itself runs in the system browser; the dialog stays usable
meanwhile (an asyncio task on the Qt loop waits for the browser to come
back).  Failures are shown with their cause and fix under the buttons.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from pop3gui.core.config.model import OAuthProviderConfig
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.oauth.store import SignIn
from pop3gui.gui.tabs.base import field_error_label, show_error

log = logging.getLogger(__name__)

PageOpener = Callable[[str], object]
"""Shows a sign-in page: returns False when it could not, or an awaitable that ends once it has."""


class Signer(Protocol):
    """What signs accounts in (the :class:`~pop3gui.gui.controller.ConnectorController`)."""

    def sign_in(self, who: str, provider: OAuthProviderConfig, open_page: PageOpener, *,
                protocol: str = "") -> Awaitable[SignIn]: ...

    def sign_out(self, who: str) -> Awaitable[bool]: ...

    def sign_in_status(self, who: str) -> Awaitable[SignIn | None]: ...


def open_in_browser(url: str) -> bool:
    """The desktop's web browser."""
    return QDesktopServices.openUrl(QUrl(url))


def when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))


def describe(record: SignIn | None) -> str:
    """One line on a stored sign-in, as the dialog and the page show it."""
    if record is None:
        return "Not signed in yet."
    who = record.identity or "the app"
    return f"Signed in as {who} since {when(record.signed_in_at)}."


class SignInBox(QWidget):
    """The sign-in state of one account and the buttons that change it.

    The owner connects ``sign_in_button`` (it knows the account and the
    provider) and calls :meth:`start`; the box runs the sign-in, shows the
    browser hint while it waits, and the result or the error afterwards.
    ``signer`` None (no connector to ask) disables the buttons.
    """

    changed = Signal()  # the texts changed: the dialog may need to grow
    signed_in = Signal(object)  # SignIn
    signed_out = Signal()

    def __init__(self, signer: Signer | None, open_page: PageOpener | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.signer = signer
        self._open_page = open_page or open_in_browser
        self.task: asyncio.Future[SignIn | None] | None = None
        self.record: SignIn | None = None
        self.page_url = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.status_label = QLabel(self.tr("Not signed in yet."))
        self.status_label.setObjectName("signInStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.sign_in_button = QPushButton(self.tr("Sign &in…"))
        self.sign_in_button.setAutoDefault(False)
        self.sign_in_button.setToolTip(self.tr("Open the provider's sign-in page in your web browser; the sign-in "
                                               "is kept in the keyring of this computer."))
        self.cancel_button = QPushButton(self.tr("Cancel si&gn-in"))
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.hide()
        self.sign_out_button = QPushButton(self.tr("Si&gn out"))
        self.sign_out_button.setAutoDefault(False)
        self.sign_out_button.setToolTip(self.tr("Forget the sign-in on this computer (the consent given at the "
                                                "provider stays until it is revoked there)."))
        for button in (self.sign_in_button, self.cancel_button, self.sign_out_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.hint_label = QLabel()
        self.hint_label.setObjectName("signInHint")
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextFormat(Qt.TextFormat.RichText)
        self.hint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.hint_label.setOpenExternalLinks(True)
        self.hint_label.hide()
        layout.addWidget(self.hint_label)
        self.error_label = field_error_label()
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error_label)

        self.cancel_button.clicked.connect(self.cancel)
        if signer is None:
            self.status_label.setText(self.tr("Sign-in is available in the properties window of the connector."))
        self._update_buttons()

    # --- state ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def _update_buttons(self) -> None:
        usable = self.signer is not None
        self.sign_in_button.setVisible(not self.busy)
        self.sign_in_button.setEnabled(usable)
        self.sign_in_button.setText(self.tr("Sign &in again…") if self.record is not None else
                                    self.tr("Sign &in…"))
        self.cancel_button.setVisible(self.busy)
        self.sign_out_button.setVisible(not self.busy)
        self.sign_out_button.setEnabled(usable and self.record is not None)

    def show_record(self, record: SignIn | None) -> None:
        self.record = record
        self.status_label.setText(describe(record))
        self._update_buttons()
        self.changed.emit()

    def show_error(self, text: str) -> None:
        show_error(self.error_label, text)
        self.changed.emit()

    def load(self, who: str) -> asyncio.Future[SignIn | None] | None:
        """Show the stored sign-in of *who* (read from the keyring in the background)."""
        if self.signer is None or self.busy:
            return None
        signer = self.signer

        async def read() -> SignIn | None:
            try:
                record = await signer.sign_in_status(who)
            except Pop3guiError as exc:  # the keyring is locked, or the stored sign-in is damaged
                self.show_error(exc.explain())
                return None
            self.show_record(record)
            return record

        return asyncio.ensure_future(read())

    # --- signing in and out -------------------------------------------------------------

    def start(self, who: str, provider: OAuthProviderConfig, *, protocol: str = "") -> asyncio.Future[SignIn | None]:
        """Sign *who* in with *provider*; the future ends with the sign-in, or None when it failed.

        *protocol* ("pop3" or "imap") is the account's as chosen now: the access asked for depends on it.
        """
        if self.busy:
            assert self.task is not None
            return self.task
        assert self.signer is not None
        signer = self.signer
        self.show_error("")
        self.page_url = ""
        self.hint_label.setText(self.tr("Opening the sign-in page…"))
        self.hint_label.show()

        async def run() -> SignIn | None:
            try:
                record = await signer.sign_in(who, provider, self._opened, protocol=protocol)
            except asyncio.CancelledError:
                self.hint_label.hide()
                self.status_label.setText(self.tr("Sign-in cancelled. ") + describe(self.record))
                raise
            except Pop3guiError as exc:
                self.show_error(self.tr("The sign-in did not work.") + "\n" + exc.explain())
                return None
            except Exception as exc:  # noqa: BLE001 - shown to the user, not a crash of the window
                log.warning("sign-in of %s failed", who, exc_info=True)
                self.show_error(self.tr("The sign-in did not work: %1").replace("%1", f"{type(exc).__name__}: {exc}"))
                return None
            finally:
                self.hint_label.hide()
                self.changed.emit()
            self.show_record(record)
            self.signed_in.emit(record)
            return record

        self.task = asyncio.ensure_future(run())
        self.task.add_done_callback(lambda _task: self._update_buttons())
        self._update_buttons()
        self.changed.emit()
        return self.task

    def _opened(self, url: str) -> object:
        """Open the page, and say where it is in case no browser shows it."""
        self.page_url = url
        link = f'<a href="{html.escape(url, quote=True)}">{self.tr("open the sign-in page")}</a>'
        opened = self._open_page(url)
        if opened is False:
            self.hint_label.setText(self.tr("No web browser could be opened. Copy the link to %1 into a browser "
                                            "on this computer and sign in there.").replace("%1", link))
        else:
            self.hint_label.setText(self.tr("Waiting for the sign-in in your web browser… If no browser window "
                                            "opened, %1 yourself.").replace("%1", link))
        self.changed.emit()
        return opened

    def cancel(self) -> None:
        """Stop waiting for the browser (the page may stay open: it no longer leads anywhere)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def sign_out(self, who: str) -> asyncio.Future[bool]:
        assert self.signer is not None
        signer = self.signer
        self.show_error("")

        async def run() -> bool:
            try:
                gone = await signer.sign_out(who)
            except Pop3guiError as exc:
                self.show_error(exc.explain())
                return False
            self.show_record(None)
            self.status_label.setText(self.tr("Signed out. ") + describe(None))
            self.signed_out.emit()
            return gone

        return asyncio.ensure_future(run())


__all__ = ["PageOpener", "SignInBox", "Signer", "describe", "open_in_browser"]
