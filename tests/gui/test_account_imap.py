"""IMAP accounts in the GUI: the protocol selector, the folders, after delivery and IDLE, and the table.

The folder picker is filled by a real Dovecot IMAP server (tests/servers/dovecot.py),
either by the dialog's List Server Folders or by the Mail Accounts page's Test.
The keyring is an in-memory one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AccountConfig, Config, OAuthProviderConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.engine.findings import Finding
from pop3gui.core.oauth.store import SignIn
from pop3gui.core.state.paths import Paths
from pop3gui.demo.keyring_backend import MemoryKeyring
from pop3gui.gui.account_model import AccountTableModel, Column
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.dialogs.account import AccountDialog
from pop3gui.gui.tabs.accounts import AccountsTab
from tests.servers.dovecot import DovecotServer, free_port

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

POLICY = RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com")
ALICE = AccountConfig(name="Alice", host="pop.isp.example", username="alice.smith", deliver_to="alice@contoso.com")
SALES = AccountConfig(name="Sales", host="imap.isp.example", protocol="imap", port=993, username="sales",
                      deliver_to="sales@contoso.com", folders=("INBOX", "Orders"), after_delivery="move",
                      move_to="Delivered", idle=False)
SERVER_FOLDERS = ("Drafts", "INBOX", "Sent", "Orders", "Archive/2024", "Trash", "Archive")


def dialog(qtbot: Any, account: AccountConfig | None = None, **kw: Any) -> AccountDialog:
    kw.setdefault("local_domains", POLICY.domains)
    dlg = AccountDialog(account, **kw)
    qtbot.addWidget(dlg)
    return dlg


def choose(combo: Any, data: str) -> None:
    index = combo.findData(data)
    assert index >= 0, data
    combo.setCurrentIndex(index)


def listed(dlg: AccountDialog) -> list[tuple[str, bool]]:
    """The folder picker's rows: (name, ticked)."""
    view = dlg.folders_view
    return [(view.item(row).text(), view.item(row).checkState() == Qt.CheckState.Checked)
            for row in range(view.count())]


def tick(dlg: AccountDialog, name: str, ticked: bool = True) -> None:
    item = next(dlg.folders_view.item(r) for r in range(dlg.folders_view.count())
                if dlg.folders_view.item(r).text() == name)
    item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)


def methods(dlg: AccountDialog) -> list[str]:
    return [dlg.method_combo.itemData(i) for i in range(dlg.method_combo.count()) if dlg.method_combo.itemData(i)]


# --- the protocol selector ------------------------------------------------------------------------


def test_the_protocol_moves_a_usual_port_to_the_other_protocols_and_shows_the_imap_section(qtbot: Any) -> None:
    dlg = dialog(qtbot)
    assert dlg.protocol() == "pop3" and dlg.port_spin.value() == 995
    assert not dlg.imap_section.isVisibleTo(dlg) and dlg.server_section.title() == "POP3 server"
    assert dlg.security_combo.currentText() == "TLS (POP3S)"

    choose(dlg.protocol_combo, "imap")
    assert dlg.port_spin.value() == 993
    assert dlg.imap_section.isVisibleTo(dlg) and dlg.server_section.title() == "IMAP server"
    assert dlg.security_combo.currentText() == "TLS (IMAPS)"
    assert dlg.host_edit.placeholderText() == "imap.example.com"
    choose(dlg.security_combo, "starttls")
    assert dlg.port_spin.value() == 143
    choose(dlg.protocol_combo, "pop3")
    assert dlg.port_spin.value() == 110 and not dlg.imap_section.isVisibleTo(dlg)

    dlg.port_spin.lineEdit().selectAll()
    qtbot.keyClicks(dlg.port_spin.lineEdit(), "2110")  # typed by someone: no protocol or security moves it
    choose(dlg.protocol_combo, "imap")
    assert dlg.port_spin.value() == 2110
    choose(dlg.security_combo, "tls")
    assert dlg.port_spin.value() == 2110


def test_a_saved_custom_port_is_kept_when_the_protocol_changes(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(ALICE, port=7995))
    choose(dlg.protocol_combo, "imap")
    assert dlg.port_spin.value() == 7995
    dlg = dialog(qtbot, SALES)  # an IMAP account on 993: its usual port, which follows a switch to POP3
    assert dlg.protocol_combo.currentData() == "imap" and dlg.port_spin.value() == 993
    choose(dlg.protocol_combo, "pop3")
    assert dlg.port_spin.value() == 995


def test_imap_offers_no_apop_and_a_hosted_service_gets_its_imap_server(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(ALICE, auth="apop"))
    assert dlg.method() == "apop" and "apop" in methods(dlg)
    choose(dlg.protocol_combo, "imap")
    assert dlg.method() == "password" and "apop" not in methods(dlg)
    assert dlg.password_edit.isVisibleTo(dlg)
    choose(dlg.protocol_combo, "pop3")
    assert "apop" in methods(dlg) and dlg.method() == "password"

    choose(dlg.method_combo, "google")
    assert (dlg.host_edit.text(), dlg.port_spin.value()) == ("pop.gmail.com", 995)
    choose(dlg.protocol_combo, "imap")
    assert (dlg.host_edit.text(), dlg.port_spin.value()) == ("imap.gmail.com", 993)
    choose(dlg.method_combo, "microsoft")
    assert (dlg.host_edit.text(), dlg.port_spin.value()) == ("outlook.office365.com", 993)
    assert "IMAP.AccessAsUser.All" in dlg.method_note.text()
    choose(dlg.protocol_combo, "pop3")
    assert "POP.AccessAsUser.All" in dlg.method_note.text() and dlg.port_spin.value() == 995


def test_an_imap_account_opens_with_apop_gone_and_its_folders(qtbot: Any) -> None:
    dlg = dialog(qtbot, SALES)
    assert "apop" not in methods(dlg)
    assert listed(dlg) == [("INBOX", True), ("Orders", True)]
    assert dlg.after_combo.currentData() == "move" and dlg.move_combo.currentText() == "Delivered"
    assert dlg.move_combo.isVisibleTo(dlg) and not dlg.idle_check.isChecked()
    assert dlg.problems() == [] and dlg.ok_button.isEnabled()
    assert dlg.account() == SALES


def test_an_existing_pop3_accounts_dialog_is_unchanged(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    assert dlg.protocol_combo.currentData() == "pop3" and dlg.protocol_combo.isVisibleTo(dlg)
    assert not dlg.imap_section.isVisibleTo(dlg)
    assert dlg.server_section.title() == "POP3 server" and dlg.port_spin.value() == 995
    assert "apop" in methods(dlg)
    assert dlg.leave_check.text() == "&Leave a copy of the messages on the server"
    assert dlg.delete_days_label.text() == "   Delete from the server &after:"
    assert dlg.problems() == [] and dlg.account() == ALICE
    # IMAP folders typed in and left behind by a switch back to POP3 do not go into a POP3 account.
    choose(dlg.protocol_combo, "imap")
    tick(dlg, "INBOX", False)
    assert dlg.problems() == ["Tick at least one folder to fetch mail from."]
    choose(dlg.protocol_combo, "pop3")
    assert dlg.problems() == [] and dlg.account() == ALICE


def test_labels_have_buddies_and_the_folder_list_works_by_keyboard(qtbot: Any) -> None:
    dlg = dialog(qtbot, SALES)
    dlg.show()
    labels = [label for label in dlg.findChildren(QLabel) if "&" in label.text() and label.isVisibleTo(dlg)]
    buddies = {label.buddy() for label in labels}
    for field in (dlg.protocol_combo, dlg.folders_view, dlg.after_combo):
        assert field in buddies
    keys = [label.text()[label.text().index("&") + 1].lower() for label in labels]
    assert len(keys) == len(set(keys)), [label.text() for label in labels]

    chain, widget = [], dlg.folders_view
    while len(chain) < 7:
        chain.append(widget)
        widget = widget.nextInFocusChain()
        while (not widget.focusPolicy() & Qt.FocusPolicy.TabFocus or not widget.isVisibleTo(dlg)
               or widget.parent() is dlg.move_combo):  # the combo box's line edit has the focus it gets
            widget = widget.nextInFocusChain()
    assert chain == [dlg.folders_view, dlg.folder_list.add_button, dlg.folder_list.remove_button,
                     dlg.list_folders_button, dlg.after_combo, dlg.move_combo, dlg.idle_check]

    view = dlg.folders_view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Insert)  # a new name, being typed
    editor = view.viewport().findChild(QLineEdit)
    assert editor is not None
    qtbot.keyClicks(editor, "Invoices")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.state() != view.State.EditingState)  # the item view commits it queued
    assert listed(dlg) == [("INBOX", True), ("Orders", True), ("Invoices", True)]
    view.setCurrentRow(1)
    qtbot.keyClick(view, Qt.Key.Key_Space)  # ticks and unticks
    assert listed(dlg)[1] == ("Orders", False)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert listed(dlg) == [("INBOX", True), ("Invoices", True)]
    qtbot.keyClick(view, Qt.Key.Key_Insert)  # typing nothing adds nothing
    editor = view.viewport().findChild(QLineEdit)
    assert editor is not None
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: view.state() != view.State.EditingState)
    assert listed(dlg) == [("INBOX", True), ("Invoices", True)]
    assert dlg.account().folders == ("INBOX", "Invoices")


# --- validation ------------------------------------------------------------------------------------------


def test_folder_and_move_to_problems_are_shown_under_their_fields(qtbot: Any) -> None:
    dlg = dialog(qtbot, SALES)
    tick(dlg, "INBOX", False)
    tick(dlg, "Orders", False)
    assert dlg.folders_error.text() == "Tick at least one folder to fetch mail from."
    assert not dlg.folders_error.isHidden() and not dlg.ok_button.isEnabled()
    tick(dlg, "Orders")
    assert dlg.folders_error.isHidden() and dlg.ok_button.isEnabled()

    dlg.move_combo.setEditText("")
    assert dlg.move_error.text() == ("Enter the folder to move delivered mail to (it is created if the server does "
                                     "not have it).")
    assert not dlg.move_error.isHidden() and not dlg.ok_button.isEnabled()
    dlg.move_combo.setEditText("orders")
    assert dlg.move_error.text() == ("Mail is fetched from orders, so mail moved there would be fetched again: "
                                     "choose another folder.")
    assert dlg.problems() == [dlg.move_error.text()]
    choose(dlg.after_combo, "delete")  # the folder to move to no longer matters
    assert dlg.move_error.isHidden() and not dlg.move_combo.isVisibleTo(dlg) and dlg.ok_button.isEnabled()
    choose(dlg.after_combo, "move")
    dlg.move_combo.setEditText("Delivered")
    assert dlg.problems() == []

    dlg.folder_list.add_folder().setText("Orders")
    assert dlg.folders_error.text() == "Orders is in the list twice."


def test_when_delivered_mail_leaves_follows_after_delivery(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(SALES, leave_on_server=True, delete_after_days=7))
    assert dlg.leave_check.text() == "&Leave delivered messages in their folder for a while"
    assert dlg.delete_days_label.text() == "   Move them to the folder &after:" and dlg.delete_days_spin.isEnabled()
    choose(dlg.after_combo, "keep")
    assert not dlg.leave_check.isEnabled() and not dlg.delete_days_spin.isEnabled()
    assert "never" in dlg.leave_check.toolTip()
    choose(dlg.after_combo, "delete")
    assert dlg.leave_check.isEnabled() and dlg.delete_days_spin.isEnabled()
    assert dlg.delete_days_label.text() == "   Delete from the server &after:"
    account = dlg.account()
    assert (account.after_delivery, account.leave_on_server, account.delete_after_days) == ("delete", True, 7)


# --- the server's folders -------------------------------------------------------------------------------


def test_the_servers_folders_fill_the_picker_and_the_folder_to_move_to(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(SALES, folders=("INBOX", "Old")), server_folders=SERVER_FOLDERS)
    in_order = ["INBOX", "Archive", "Archive/2024", "Drafts", "Orders", "Sent", "Trash"]
    assert listed(dlg) == [(name, name == "INBOX") for name in in_order] + [("Old", True)]
    old = dlg.folders_view.item(7)
    assert "did not list this folder" in old.toolTip() and not old.icon().isNull()
    assert dlg.folders_view.item(0).icon().isNull() and not dlg.folders_view.item(0).toolTip()
    assert [dlg.move_combo.itemText(i) for i in range(dlg.move_combo.count())] == in_order
    assert dlg.move_combo.currentText() == "Delivered"

    tick(dlg, "Old", False)
    tick(dlg, "Orders")
    dlg.folders_view.setCurrentRow(4)
    dlg.folder_list.remove_button.click()  # a server folder is unticked, not removed
    assert listed(dlg)[4] == ("Orders", False)
    tick(dlg, "Orders")
    dlg.move_combo.setCurrentIndex(dlg.move_combo.findText("Archive/2024"))
    account = dlg.account()
    assert account.folders == ("INBOX", "Orders") and account.move_to == "Archive/2024"


def test_an_imap_account_from_the_dialog_survives_saving_and_loading(qtbot: Any, tmp_path: Path) -> None:
    dlg = dialog(qtbot, other_names=["Alice"], server_folders=SERVER_FOLDERS)
    qtbot.keyClicks(dlg.name_edit, "Sales")
    choose(dlg.protocol_combo, "imap")
    choose(dlg.security_combo, "starttls")
    qtbot.keyClicks(dlg.host_edit, "imap.isp.example")
    qtbot.keyClicks(dlg.username_edit, "sales")
    qtbot.keyClicks(dlg.password_edit, "s3cret")
    qtbot.keyClicks(dlg.deliver_edit, "sales@contoso.com")
    tick(dlg, "Orders")
    tick(dlg, "Archive/2024")
    choose(dlg.after_combo, "move")
    dlg.move_combo.setEditText("Delivered")
    dlg.idle_check.setChecked(False)
    dlg.leave_check.setChecked(True)
    dlg.delete_days_spin.setValue(3)
    assert dlg.problems() == []
    account = dlg.account()
    assert account == AccountConfig(name="Sales", host="imap.isp.example", protocol="imap", port=143,
                                    security="starttls", username="sales", deliver_to="sales@contoso.com",
                                    folders=("INBOX", "Archive/2024", "Orders"), after_delivery="move",
                                    move_to="Delivered", idle=False, leave_on_server=True, delete_after_days=3)
    assert dlg.new_password() == "s3cret"

    path = tmp_path / "config.toml"
    save_config(Config(policies=(POLICY,), accounts=(ALICE, account)), path)
    loaded = load_config(path)
    assert loaded.accounts == (ALICE, account)
    reopened = dialog(qtbot, loaded.accounts[1])
    assert reopened.account() == account and reopened.problems() == []


def test_an_imap_oauth2_sign_in_asks_for_imap_access(qtbot: Any, loop: asyncio.AbstractEventLoop) -> None:
    provider = OAuthProviderConfig(name="contoso-entra", client_id="11111111-2222", kind="microsoft")
    asked: list[tuple[str, str]] = []

    class Signer:
        async def sign_in(self, who: str, provider: OAuthProviderConfig, open_page: Any, *,
                          protocol: str = "") -> SignIn:
            asked.append((who, protocol))
            return SignIn("", "dave@contoso.com", "", 1.0, 1.0)

        async def sign_out(self, who: str) -> bool:
            return True

        async def sign_in_status(self, who: str) -> SignIn | None:
            return None

    account = replace(ALICE, auth="oauth2", oauth_provider=provider.name, host="outlook.office365.com")
    dlg = dialog(qtbot, account, providers=(provider,), signer=Signer())

    async def scenario() -> None:
        choose(dlg.protocol_combo, "imap")  # chosen now, not saved yet
        assert await dlg.sign_in() is not None  # type: ignore[misc]
        choose(dlg.protocol_combo, "pop3")
        assert await dlg.sign_in() is not None  # type: ignore[misc]

    loop.run_until_complete(asyncio.wait_for(scenario(), 10))
    assert asked == [("Alice", "imap"), ("Alice", "pop3")]


def test_list_server_folders_without_a_connector_is_disabled(qtbot: Any) -> None:
    dlg = dialog(qtbot, SALES)
    assert not dlg.list_folders_button.isEnabled() and dlg.list_server_folders() is None


def test_a_failed_listing_says_why_and_keeps_the_folders(qtbot: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def check(account: AccountConfig, password: str | None) -> Finding:
        assert account.name == "Sales" and password is None  # the saved name: the stored password is used
        return Finding(False, "account 'Sales'", "the server refused the login", "Wrong password.",
                       "Enter it again.", folders=())

    dlg = dialog(qtbot, SALES, check=check)
    dlg.name_edit.setText("Sales team")
    task = dlg.list_server_folders()
    assert task is not None and not dlg.list_folders_button.isEnabled()
    assert dlg.folders_status.text() == "Logging in to the server…"
    loop.run_until_complete(asyncio.wait_for(task, 10))
    assert dlg.list_folders_button.isEnabled()
    assert dlg.folders_status.text() == ("Test failed: the server refused the login\nCause: Wrong password.\n"
                                         "Fix: Enter it again.")
    assert listed(dlg) == [("INBOX", True), ("Orders", True)] and dlg.problems() == []


def test_the_table_says_which_accounts_are_imap() -> None:
    model = AccountTableModel()
    model.set_accounts([ALICE, SALES])
    assert model.headerData(Column.SERVER, Qt.Orientation.Horizontal) == "Server"
    assert model.index(0, Column.SERVER).data() == "pop.isp.example:995"
    assert model.index(1, Column.SERVER).data() == "imap.isp.example:993 (IMAP)"
    assert model.index(0, Column.SERVER).data(Qt.ItemDataRole.ToolTipRole) == "POP3, TLS"
    assert model.index(1, Column.SERVER).data(Qt.ItemDataRole.ToolTipRole) == (
        "IMAP, TLS\nFolders: INBOX, Orders\nDelivered mail is moved to Delivered.")


# --- against the real Dovecot IMAP server ------------------------------------------------------------


def make_controller(tmp_path: Path, config: Config) -> ConnectorController:
    home = tmp_path / "home"
    smtp = SmtpConfig(host="127.0.0.1", port=free_port(), timeout_s=5)
    return ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"),
                               replace(config, smtp=smtp, policies=(POLICY,)))


@pytest.fixture
def controller(tmp_path: Path, memory_keyring: MemoryKeyring) -> Iterator[ConnectorController]:
    ctl = make_controller(tmp_path, Config(accounts=(ALICE,)))
    yield ctl
    ctl.close()


def dovecot_account(server: DovecotServer, user: Any, name: str = "Sales") -> AccountConfig:
    return AccountConfig(name=name, host="127.0.0.1", protocol="imap", port=server.imaps_port, security="tls",
                         ca_file=str(server.ca_path), username=user.name, deliver_to="sales@contoso.com",
                         timeout_s=20)


@pytest.mark.servers
def test_list_server_folders_fills_the_picker_from_dovecot(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                          dovecot_imap: DovecotServer, imap_user: Any,
                                                          controller: ConnectorController) -> None:
    for folder in ("Orders", "Archive/2024"):
        dovecot_imap.create_folder(imap_user.name, folder)
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    account = dovecot_account(dovecot_imap, imap_user)

    async def scenario() -> None:
        assert await tab.add_account(account, imap_user.password)
        dlg = tab.open_edit_dialog()
        assert dlg is not None
        task = dlg.list_server_folders()
        assert task is not None
        finding = await task
        assert finding is not None and finding.ok, finding
        assert set(finding.folders) == {"INBOX", "Orders", "Archive/2024"}
        assert listed(dlg) == [("INBOX", True), ("Archive/2024", False), ("Orders", False)]
        assert dlg.folders_status.text().startswith("The server has 3 folders; tick the ones to fetch from.\nTest: "
                                                    "logged in to 127.0.0.1:")
        tick(dlg, "Orders")
        choose(dlg.after_combo, "move")
        dlg.move_combo.setCurrentIndex(dlg.move_combo.findText("Archive/2024"))
        assert dlg.problems() == []
        dlg.accept()
        await asyncio.sleep(0)
        while tab.model.account_named("Sales") == account:
            await asyncio.sleep(0.01)

    loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    saved = tab.model.account_named("Sales")
    assert saved == replace(account, folders=("INBOX", "Orders"), after_delivery="move", move_to="Archive/2024")
    controller.save(tab.apply(controller.config))
    assert load_config(controller.paths.config_file).accounts[1] == saved


@pytest.mark.servers
def test_a_new_account_lists_folders_with_the_password_typed_in(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                                dovecot_imap: DovecotServer, imap_user: Any,
                                                                controller: ConnectorController,
                                                                memory_keyring: MemoryKeyring) -> None:
    dovecot_imap.create_folder(imap_user.name, "Orders")
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    dlg = tab.make_dialog()
    qtbot.addWidget(dlg)
    choose(dlg.protocol_combo, "imap")
    dlg.host_edit.setText("127.0.0.1")
    dlg.port_spin.setValue(dovecot_imap.imap_port)
    choose(dlg.security_combo, "starttls")
    dlg.username_edit.setText(imap_user.name)

    async def scenario() -> Finding | None:
        dlg.password_edit.setText("wrong")
        refused = await dlg.list_server_folders()  # type: ignore[misc]
        assert refused is not None and not refused.ok
        assert dlg.folders_status.text().startswith("Test failed: The IMAP server 127.0.0.1:")
        assert "refused the login" in dlg.folders_status.text() and "\nFix: " in dlg.folders_status.text()
        dlg.password_edit.setText(imap_user.password)
        return await dlg.list_server_folders()  # type: ignore[misc]

    dlg.verify_check.setChecked(False)  # the dialog has no field for the test server's own CA
    finding = loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    assert finding is not None and finding.ok, finding
    assert ("Orders", False) in listed(dlg) and dlg.folders_status.styleSheet() == ""
    assert memory_keyring.get_password("pop3gui", "new account") is None  # nothing typed was stored


@pytest.mark.servers
def test_the_pages_test_fills_the_picker_of_the_accounts_dialog(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                                dovecot_imap: DovecotServer, imap_user: Any,
                                                                controller: ConnectorController) -> None:
    dovecot_imap.create_folder(imap_user.name, "Orders")
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    account = dovecot_account(dovecot_imap, imap_user)

    async def scenario() -> list[Finding]:
        assert await tab.add_account(account, imap_user.password)
        return await tab.test_account(account)

    findings = loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    assert findings[0].ok and set(findings[0].folders) == {"INBOX", "Orders"}, findings
    dlg = tab.make_dialog(account)
    qtbot.addWidget(dlg)
    assert listed(dlg) == [("INBOX", True), ("Orders", False)]
