"""The "Mail Accounts" page: the POP3 and IMAP mailboxes, their routing rules, and a Test button.

Buttons open dialogs; what a dialog returns is applied by plain methods
(:meth:`AccountsTab.add_account`, :meth:`AccountsTab.replace_account`,
:meth:`AccountsTab.remove_account`, :meth:`AccountsTab.test_account`) that
tests and other code call directly.  Passwords go to the keyring at once (in a
worker thread); accounts, rules and the OAuth2 providers the account dialogs
add go into the window's draft config through :meth:`AccountsTab.apply`.
An OAuth2 account is signed in from its dialog (the sign-in is kept in the
keyring at once, under the account's name).  An IMAP account's dialog lists
the server's folders: those of the last Test of the account, or of its
**List Server Folders** button (:meth:`AccountsTab.check_mailbox`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import AccountConfig, Config, OAuthProviderConfig, RoutingRuleConfig
from pop3gui.core.engine.findings import Finding
from pop3gui.core.engine.preflight import check_account
from pop3gui.core.config.rules import splice_rules
from pop3gui.core.state.credentials import TypedPassword
from pop3gui.gui.account_model import AccountRole, AccountTableModel, Column
from pop3gui.core.migrate import ImportResult
from pop3gui.gui.dialogs.account import AccountDialog
from pop3gui.gui.dialogs.sign_in import PageOpener
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.account_keyring import AccountKeyring
from pop3gui.gui.tabs.base import ConfigTab
from pop3gui.gui.tabs.findings import FindingsView


class AccountsTab(ConfigTab):
    """The accounts table with Add…, Edit…, Remove and Test, and the test's findings below."""

    test_finished = Signal(object)  # list[Finding] of the last Test
    import_requested = Signal()  # Import…: the window opens the preview (an import touches other pages too)

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._rules: list[RoutingRuleConfig] = []
        self._providers: list[OAuthProviderConfig] = []
        self._provider_renames: dict[str, str] = {}  # a provider's name in the loaded config -> its name now
        self._local_domains: tuple[str, ...] = ()
        self.open_page: PageOpener | None = None  # how the dialogs show a sign-in page (None: the web browser)
        self.dialog: AccountDialog | None = None  # the account dialog open now
        self._tasks: set[asyncio.Future[Any]] = set()
        self._testing = False
        self._server_folders: dict[str, tuple[str, ...]] = {}  # an IMAP account's folders at its last Test
        self.keyring = AccountKeyring(controller, self)
        self.model = AccountTableModel(self)
        self.model.connect_controller(controller)
        self._build()
        self.load(controller.config)

    # --- building -----------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("The connector downloads mail from these mailboxes at your Internet service "
                               "provider and delivers it to the local mail server."))
        intro.setWordWrap(True)
        layout.addWidget(intro)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setAccessibleName(self.tr("Mail accounts"))
        accounts_label = QLabel(self.tr("&Accounts:"))
        accounts_label.setBuddy(self.table)
        layout.addWidget(accounts_label)
        layout.addWidget(self.table, 3)

        buttons = QHBoxLayout()
        self.add_button = QPushButton(icon("add"), self.tr("A&dd…"))
        self.add_button.setAccessibleName(self.tr("Add account"))
        self.edit_button = QPushButton(icon("edit"), self.tr("&Edit…"))
        self.edit_button.setAccessibleName(self.tr("Edit account"))
        self.remove_button = QPushButton(icon("remove"), self.tr("&Remove"))
        self.remove_button.setAccessibleName(self.tr("Remove account"))
        self.import_button = QPushButton(self.tr("&Import…"))
        self.import_button.setAccessibleName(self.tr("Import accounts from fetchmail or getmail"))
        self.test_button = QPushButton(icon("test"), self.tr("&Test"))
        self.test_button.setAccessibleName(self.tr("Test account"))
        self.test_button.setToolTip(self.tr("Log in to the mail server and ask the local server whether it "
                                            "accepts this account's recipients; nothing is downloaded or sent."))
        for button in (self.add_button, self.edit_button, self.remove_button, self.test_button, self.import_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.findings = FindingsView(self)
        self.test_status = self.findings.status_label
        self.findings_list = self.findings.findings_list
        layout.addWidget(self.test_status)
        layout.addWidget(self.findings_list, 2)

        self.add_button.clicked.connect(self.open_add_dialog)
        self.edit_button.clicked.connect(self.open_edit_dialog)
        self.remove_button.clicked.connect(self.confirm_remove)
        self.test_button.clicked.connect(self.test_selected)
        self.import_button.clicked.connect(self.import_requested)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.model.rowsRemoved.connect(self._update_buttons)
        self.table.installEventFilter(self)
        self._update_buttons()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter edits and Delete removes the selected account, as double-click and Remove do."""
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selected_account():
                self.open_edit_dialog()
                return True
            if event.key() == Qt.Key.Key_Delete and self.selected_account():
                self.confirm_remove()
                return True
        return super().eventFilter(watched, event)

    # --- ConfigTab ------------------------------------------------------------------

    def load(self, config: Config) -> None:
        self._rules = list(config.rules)
        self._providers = list(config.oauth_providers)
        self._provider_renames = {}
        self._local_domains = config.local_domains()
        self.model.set_local_domains(self._local_domains)
        self.model.set_accounts(config.accounts)
        if config.accounts:
            self.table.selectRow(0)
        self._resize_columns()

    def apply(self, config: Config) -> Config:
        smtp = config.smtp
        if smtp.oauth_provider in self._provider_renames:  # the [smtp] login may share a renamed provider
            smtp = replace(smtp, oauth_provider=self._provider_renames[smtp.oauth_provider])
        return replace(config, smtp=smtp, accounts=tuple(self.model.accounts()), rules=tuple(self._rules),
                       oauth_providers=tuple(self._providers))

    def problems(self) -> list[str]:
        return []  # the dialogs refuse invalid accounts and rules

    def draft_changed(self, config: Config) -> None:
        self._local_domains = config.local_domains()
        self.model.set_local_domains(self._local_domains)

    # --- what the buttons do, callable without dialogs ----------------------------------

    def accounts(self) -> list[AccountConfig]:
        return self.model.accounts()

    def rules(self) -> list[RoutingRuleConfig]:
        return list(self._rules)

    def providers(self) -> list[OAuthProviderConfig]:
        """The OAuth2 providers as edited in the account dialogs."""
        return list(self._providers)

    def set_providers(self, providers: Sequence[OAuthProviderConfig], renames: dict[str, str] | None = None) -> None:
        """Take the providers an account dialog returned; accounts naming a renamed one follow it."""
        renames = renames or {}
        changed = list(providers) != self._providers or bool(renames)
        self._providers = list(providers)
        for old, new in renames.items():
            followed = False
            for loaded, current in list(self._provider_renames.items()):
                if current == old:
                    self._provider_renames[loaded] = new
                    followed = True
            if not followed:
                self._provider_renames[old] = new
            for account in self.model.accounts():
                if account.oauth_provider == old:
                    self.model.replace_account(account.name, replace(account, oauth_provider=new))
        if changed:
            self.edited.emit()

    def selected_account(self) -> AccountConfig | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].data(AccountRole) if rows else None

    async def add_account(self, account: AccountConfig, password: str | None = None,
                          rules: Sequence[RoutingRuleConfig] = (), *, sign_in_from: str | None = None) -> bool:
        """Add ``account`` (its password to the keyring first); False if the keyring refused it.

        The account is added even then, so nothing typed is lost; the message box
        says how to make the keyring work.  ``sign_in_from`` is the name an OAuth2
        sign-in was stored under in the dialog, when the account got another name after it.
        """
        if self.model.row_of(account.name) >= 0:
            raise ValueError(f"another account is already called {account.name!r}")
        stored = await self.keyring.store_password(account.name, password) if password else True
        if account.auth == "oauth2" and sign_in_from and sign_in_from != account.name:
            stored = await self.keyring.copy_sign_in(sign_in_from, account.name) and stored
        row = self.model.append_account(account)
        self._set_rules(account.name, account, rules)
        self.table.selectRow(row)
        self._resize_columns()
        self.edited.emit()
        return stored

    async def replace_account(self, old_name: str, account: AccountConfig, password: str | None = None,
                              rules: Sequence[RoutingRuleConfig] | None = None) -> bool:
        """Put ``account`` in place of ``old_name``; a rename carries its rules (and password) along.

        ``rules`` None keeps the account's rules; a user mailbox has none.
        """
        if self.model.row_of(old_name) < 0:
            raise KeyError(old_name)
        if account.name != old_name and self.model.row_of(account.name) >= 0:
            raise ValueError(f"another account is already called {account.name!r}")
        if account.auth == "oauth2":
            stored = await self.keyring.copy_sign_in(old_name, account.name) if account.name != old_name else True
        elif password:
            stored = await self.keyring.store_password(account.name, password)
        elif account.name != old_name:
            stored = await self.keyring.copy_password(old_name, account.name)
        else:
            stored = True
        row = self.model.replace_account(old_name, account)
        if old_name in self._server_folders:
            folders = self._server_folders.pop(old_name)
            if account.protocol == "imap":
                self._server_folders[account.name] = folders
        if rules is None:
            rules = [replace(r, account=account.name) for r in self._rules if r.account == old_name]
        self._set_rules(old_name, account, rules)
        self.table.selectRow(row)
        self._resize_columns()
        self.edited.emit()
        return stored

    def remove_account(self, name: str) -> None:
        """Remove the account and its rules (its keyring entry stays until the config is saved)."""
        self.model.remove_account(name)
        self._server_folders.pop(name, None)
        self._rules = [r for r in self._rules if r.account != name]
        if self.model.rowCount():
            self.table.selectRow(min(self.table.currentIndex().row(), self.model.rowCount() - 1)
                                 if self.table.currentIndex().isValid() else 0)
        self.edited.emit()

    def _set_rules(self, old_name: str, account: AccountConfig, rules: Iterable[RoutingRuleConfig]) -> None:
        self._rules = splice_rules(self._rules, old_name, account, rules)

    async def test_account(self, account: AccountConfig) -> list[Finding]:
        """Run the controller's test for ``account`` and show the findings under the table."""
        self._begin_test(account)
        findings: list[Finding] = []
        try:
            findings = list(await self.controller.test_account(account, providers=tuple(self._providers)))
        finally:
            self._testing = False
            self.test_button.setText(self.tr("&Test"))
            self._update_buttons()
            self.show_findings(account, findings)
        if account.protocol == "imap" and findings and findings[0].folders:
            self._server_folders[account.name] = findings[0].folders
        self.test_finished.emit(findings)
        return findings

    async def check_mailbox(self, account: AccountConfig, password: str | None = None) -> Finding:
        """Log in to *account* as an account dialog has it, as the Test does, and probe nothing else.

        *password* is one typed in the dialog and not stored yet (None: the keyring's).  An IMAP
        account's finding lists the server's folders; the account's dialog offers them from then on.
        """
        credentials = (self.controller.credentials if password is None else
                       TypedPassword(self.controller.credentials, account.name, password))
        config = Config(smtp=self.controller.config.smtp, accounts=(account,),
                        oauth_providers=tuple(self._providers))
        finding: Finding = await check_account(account, credentials, config=config,
                                               sign_ins=self.controller.sign_ins)
        if finding.folders:
            self._server_folders[account.name] = finding.folders
        return finding

    def _begin_test(self, account: AccountConfig) -> None:
        self._testing = True
        self._update_buttons()
        self.test_button.setText(self.tr("Testing…"))
        self.findings.begin(account.name)

    def show_findings(self, account: AccountConfig, findings: Sequence[Finding]) -> None:
        self.findings.show_findings(account.name, findings)

    def findings_text(self) -> list[str]:
        """The lines shown under the table, one entry per finding."""
        return self.findings.lines()

    # --- buttons ----------------------------------------------------------------------------

    def _update_buttons(self, *_args: object) -> None:
        selected = self.selected_account() is not None
        self.edit_button.setEnabled(selected)
        self.remove_button.setEnabled(selected)
        self.test_button.setEnabled(selected and not self._testing)

    def _resize_columns(self) -> None:
        self.table.resizeColumnsToContents()

    def _double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_edit_dialog()

    def make_dialog(self, account: AccountConfig | None = None) -> AccountDialog:
        """The dialog Add… (``account`` None) or Edit… opens, not shown yet."""
        others = [a.name for a in self.model.accounts() if account is None or a.name != account.name]
        rules = [r for r in self._rules if account is not None and r.account == account.name]
        folders = self._server_folders.get(account.name, ()) if account is not None else ()
        dialog = AccountDialog(account, other_names=others, local_domains=self._local_domains, rules=rules,
                               credentials=self.controller.credentials, providers=self._providers,
                               signer=self.controller, open_page=self.open_page, check=self.check_mailbox,
                               server_folders=folders, parent=self)
        dialog.signed_in.connect(lambda name, _record: self.model.signed_in(name))
        return dialog

    def _opened(self, dialog: AccountDialog) -> AccountDialog:
        self.dialog = dialog
        dialog.finished.connect(lambda _result: self._closed(dialog))
        dialog.open()
        return dialog

    def _closed(self, dialog: AccountDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def open_add_dialog(self) -> AccountDialog:
        dialog = self.make_dialog()

        def accepted() -> None:
            self.set_providers(dialog.providers(), dialog.provider_renames())
            self._spawn(self.add_account(dialog.account(), dialog.new_password(), dialog.routing_rules(),
                                         sign_in_from=dialog.sign_in_owner()))

        dialog.accepted.connect(accepted)
        return self._opened(dialog)

    def add_imported(self, result: ImportResult) -> asyncio.Future[Any]:
        """Start :meth:`apply_import` (the window calls it when the preview's OK was pressed)."""
        return self._spawn(self.apply_import(result))

    async def apply_import(self, result: ImportResult) -> bool:
        """Add the imported accounts and their OAuth2 providers; False if the keyring refused a password."""
        known = {p.name for p in self._providers}
        new_providers = [p for p in result.config.oauth_providers if p.name not in known]
        if new_providers:
            self.set_providers([*self._providers, *new_providers])
        passwords = {s.account: s.password for s in result.secrets if not s.smtp_username}
        stored = True
        for account in result.added:
            if self.model.row_of(account.name) < 0:
                stored = await self.add_account(account, passwords.get(account.name)) and stored
        return stored

    def open_edit_dialog(self) -> AccountDialog | None:
        account = self.selected_account()
        if account is None:
            return None
        dialog = self.make_dialog(account)

        def accepted() -> None:
            self.set_providers(dialog.providers(), dialog.provider_renames())
            old_name = account.name
            if self.model.row_of(old_name) < 0:
                return  # removed meanwhile
            self._spawn(self.replace_account(old_name, dialog.account(), dialog.new_password(),
                                             dialog.routing_rules()))

        dialog.accepted.connect(accepted)
        return self._opened(dialog)

    def show_account(self, name: str, *, edit: bool = True) -> AccountDialog | None:
        """Select the account called *name* and (``edit``) open its dialog, e.g. to sign it in again.

        An account dialog already open stays the one shown; None when there is no such account.
        """
        row = self.model.row_of(name)
        if row < 0:
            return None
        if self.dialog is not None:
            if QGuiApplication.platformName() != "offscreen":  # no stacking order there (Qt warns)
                self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return self.open_edit_dialog() if edit else None

    def confirm_remove(self) -> QMessageBox | None:
        account = self.selected_account()
        if account is None:
            return None
        rules = sum(1 for r in self._rules if r.account == account.name)
        text = self.tr("Remove the account %1?").replace("%1", account.name)
        if rules:
            text += " " + self.tr("Its %1 routing rule(s) are removed too.").replace("%1", str(rules))
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Remove Account"), text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setInformativeText(self.tr("Mail already delivered is not affected. Nothing is deleted on the "
                                       "mail server."))
        yes = box.button(QMessageBox.StandardButton.Yes)

        def clicked(button: object) -> None:
            if button is yes:
                self.remove_account(account.name)

        box.buttonClicked.connect(clicked)
        box.open()
        return box

    def test_selected(self) -> asyncio.Future[list[Finding]] | None:
        account = self.selected_account()
        if account is None or self._testing:
            return None
        self._begin_test(account)  # at once, not when the task first runs
        return self._spawn(self.test_account(account))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(fut: asyncio.Future[Any]) -> None:
            self._tasks.discard(fut)
            if not fut.cancelled() and fut.exception() is not None:
                fut.get_loop().call_exception_handler(
                    {"message": "Mail Accounts page", "exception": fut.exception(), "future": fut})

        task.add_done_callback(done)
        return task


__all__ = ["AccountsTab", "Column"]
