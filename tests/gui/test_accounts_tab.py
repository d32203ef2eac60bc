"""The Mail Accounts page: account table model, account and routing dialogs, the tab's edits and Test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import (
    DEFAULT_ENVELOPE_HEADERS,
    AccountConfig,
    Config,
    RecipientPolicy,
    RoutingRuleConfig,
    SmtpConfig,
)
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.errors import CredentialError
from pop3gui.core.engine.status import AccountResult, Phase
from pop3gui.core.engine.status import AccountStatus as Status
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.state.paths import Paths
from pop3gui.gui.account_model import AccountRole, AccountTableModel, Column, State
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.dialogs.account import AccountDialog
from pop3gui.gui.dialogs.routing import RoutingRulesDialog
from pop3gui.gui.tabs.accounts import AccountsTab

ALICE = AccountConfig(name="Alice", host="pop.isp.example", username="alice.smith", deliver_to="alice@contoso.com")
OFFICE = AccountConfig(name="Office", host="pop3.isp.example", username="office", port=110, security="starttls",
                       kind="global")
SALES = RoutingRuleConfig(account="Office", contains="sales@", deliver_to="sales@contoso.com")
SUPPORT = RoutingRuleConfig(account="Office", contains="[Support]", deliver_to="help@contoso.com", field="subject")
# The offscreen platform says this whenever a top-level window with a layout is shown; it is
# not a problem of the page (QT_QPA_PLATFORM=offscreen has no window manager to pass hints to).
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

POLICY = RecipientPolicy("Default Policy", ("contoso.com", "contoso.local"), "contoso.com")


def sample_config(**changes: Any) -> Config:
    return replace(Config(policies=(POLICY,), accounts=(ALICE, OFFICE), rules=(SALES, SUPPORT)), **changes)






def make_controller(tmp_path: Path, config: Config) -> ConnectorController:
    home = tmp_path / "home"
    return ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"), config)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ConnectorController]:
    ctl = make_controller(tmp_path, sample_config())
    yield ctl
    ctl.close()


@pytest.fixture
def tab(qtbot: Any, controller: ConnectorController) -> AccountsTab:
    widget = AccountsTab(controller)
    qtbot.addWidget(widget)
    return widget


def dialog(qtbot: Any, account: AccountConfig | None = None, **kw: Any) -> AccountDialog:
    kw.setdefault("local_domains", POLICY.domains)
    dlg = AccountDialog(account, **kw)
    qtbot.addWidget(dlg)
    return dlg


# --- the model ------------------------------------------------------------------------------


def test_model_passes_the_model_tester(qtmodeltester: Any) -> None:
    model = AccountTableModel()
    model.set_local_domains(["contoso.com"])
    model.set_accounts([ALICE, OFFICE, replace(ALICE, name="Bob", deliver_to="bob@fabrikam.com", enabled=False)])
    model.on_account_status(Status("Alice", Phase.CONNECTING))
    model.on_account_status(Status("Alice", Phase.DOWNLOADING, 12, 40, 1_258_291))
    model.on_account_status(Status("Bob", Phase.FAILED, result=_failed("Bob", "login refused")))
    qtmodeltester.check(model)
    model.append_account(replace(ALICE, name="Carol"))
    model.remove_account("Office")
    qtmodeltester.check(model)


def test_model_columns_and_account_role() -> None:
    model = AccountTableModel()
    model.set_accounts([ALICE, OFFICE])
    texts = [model.index(0, c).data() for c in Column]
    assert texts == ["Alice", "pop.isp.example:995", "alice.smith", "User", "alice@contoso.com", "Not run yet"]
    assert model.index(1, Column.SERVER).data() == "pop3.isp.example:110"
    assert model.index(1, Column.KIND).data() == "Global"
    assert model.index(1, Column.DELIVERS_TO).data() == "To/Cc + envelope headers"
    assert not model.index(1, Column.KIND).data(Qt.ItemDataRole.DecorationRole).isNull()
    assert model.index(1, Column.LAST_RESULT).data(AccountRole) == OFFICE
    assert model.headerData(Column.DELIVERS_TO, Qt.Orientation.Horizontal) == "Delivers to"


def _failed(account: str, text: str, cause: str = "", fix: str = "") -> AccountResult:
    res = AccountResult(account)
    res.fail(text, diagnosis=Failure.AUTH_FAILED, cause=cause, fix=fix)
    return res


def test_model_follows_progress_and_results() -> None:
    model = AccountTableModel()
    model.set_accounts([ALICE, OFFICE])
    last = model.index(0, Column.LAST_RESULT)
    model.on_account_status(Status("Alice", Phase.CONNECTING))
    assert last.data() == "Connecting…"
    model.on_account_status(Status("Alice", Phase.DOWNLOADING, 12, 40, 1_258_291))
    assert last.data() == "12 / 40 messages, 1.2 MB"
    at = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    model.on_account_status(Status("Alice", Phase.DELIVERING, 40, 40, 4_000_000))
    model.on_account_status(Status("Alice", Phase.DONE, result=AccountResult("Alice", delivered=40), time=at))
    status = model.status("Alice")
    assert status is not None and status.state is State.OK and status.done == 40
    assert last.data().endswith("40 delivered")
    assert at.astimezone().strftime("%H:%M") in last.data()

    # A failed account shows why, from its result, as the tooltip.
    model.on_account_status(Status("Office", Phase.CONNECTING))
    model.on_account_status(Status("Office", Phase.FAILED, time=at, result=_failed(
        "Office", "the server refused the password", cause="Wrong password.", fix="Enter it again.")))
    failed = model.index(1, Column.LAST_RESULT)
    assert model.status("Office").state is State.FAILED  # type: ignore[union-attr]
    assert "failed" in failed.data()
    assert "Wrong password." in failed.data(Qt.ItemDataRole.ToolTipRole)
    assert "Enter it again." in failed.data(Qt.ItemDataRole.ToolTipRole)


def test_a_message_needing_attention_is_a_warning_explained_by_the_first_error() -> None:
    model = AccountTableModel()
    model.set_accounts([ALICE])
    model.on_account_status(Status("Alice", Phase.CONNECTING))
    model.on_event(Event(EventId.RECIPIENT_REFUSED, Severity.ERROR, "refused erin@contoso.eu", account="Alice",
                         fix="Add contoso.eu to a recipient policy."))
    model.on_event(Event(EventId.QUARANTINED, Severity.ERROR, "kept in quarantine", account="Alice"))
    model.on_account_status(Status("Alice", Phase.DONE, result=AccountResult("Alice", delivered=3, quarantined=1)))
    status = model.status("Alice")
    assert status is not None and status.state is State.WARNING and status.done == 3
    assert status.error.startswith("refused erin@contoso.eu") and "Add contoso.eu" in status.error
    assert model.index(0, Column.LAST_RESULT).data().endswith("3 delivered, with warnings")

    # Without an error event, the result itself says what needs attention.
    model.on_account_status(Status("Alice", Phase.CONNECTING))
    model.on_account_status(Status("Alice", Phase.DONE, result=AccountResult("Alice", delivered=1, deferred=2)))
    assert model.status("Alice").error == "2 left for retry."  # type: ignore[union-attr]


# --- the account dialog ---------------------------------------------------------------------------


def test_port_follows_security_until_the_user_types_one(qtbot: Any) -> None:
    dlg = dialog(qtbot)
    assert dlg.security_combo.currentData() == "tls" and dlg.port_spin.value() == 995
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("starttls"))
    assert dlg.port_spin.value() == 110
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("tls"))
    assert dlg.port_spin.value() == 995
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("none"))
    assert dlg.port_spin.value() == 110

    dlg.port_spin.lineEdit().selectAll()
    qtbot.keyClicks(dlg.port_spin.lineEdit(), "1995")
    assert dlg.port_spin.value() == 1995
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("tls"))
    assert dlg.port_spin.value() == 1995
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("starttls"))
    assert dlg.port_spin.value() == 1995


def test_an_existing_custom_port_is_kept(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(ALICE, port=7995))
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("starttls"))
    assert dlg.port_spin.value() == 7995


def test_security_warnings(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    assert dlg.security_warning.isHidden() and dlg.verify_warning.isHidden()
    dlg.verify_check.setChecked(False)
    assert not dlg.verify_warning.isHidden()
    assert "read" in dlg.verify_warning.text()
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("none"))
    assert "clear text" in dlg.security_warning.text() and not dlg.security_warning.isHidden()
    assert not dlg.verify_check.isEnabled()
    assert dlg.ok_button.isEnabled()  # warnings do not block OK


def test_validation_messages_as_typed(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE, other_names=["Office"])
    assert dlg.ok_button.isEnabled() and dlg.problems() == []

    qtbot.keyClicks(dlg.deliver_edit, "@@")
    assert not dlg.ok_button.isEnabled()
    assert "not an e-mail address" in dlg.deliver_error.text() and not dlg.deliver_error.isHidden()
    dlg.deliver_edit.setText("alice@contoso.com")
    assert dlg.deliver_error.isHidden() and dlg.ok_button.isEnabled()

    dlg.host_edit.clear()
    assert "host name" in dlg.host_error.text() and not dlg.ok_button.isEnabled()
    dlg.host_edit.setText("pop isp.example")
    assert "no spaces" in dlg.host_error.text()
    dlg.host_edit.setText("pop.isp.example")

    dlg.name_edit.setText("office")
    assert "already called office" in dlg.name_error.text() and not dlg.ok_button.isEnabled()
    dlg.name_edit.clear()
    assert "Enter a name" in dlg.name_error.text()
    dlg.name_edit.setText("Alice")
    assert dlg.problems() == [] and dlg.ok_button.isEnabled()


def test_deliver_to_outside_the_recipient_policies_is_a_warning(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    dlg.deliver_edit.setText("alice@fabrikam.com")
    assert dlg.deliver_warning.text() == (
        "No recipient policy covers fabrikam.com: the local server will likely refuse it")
    assert dlg.deliver_error.isHidden() and dlg.ok_button.isEnabled()
    dlg.deliver_edit.setText("alice@Contoso.COM")
    assert dlg.deliver_warning.isHidden()


def test_global_shows_envelope_headers_and_routing_rules(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    assert dlg.deliver_edit.isVisibleTo(dlg) and not dlg.headers_edit.isVisibleTo(dlg)
    assert not dlg.rules_button.isVisibleTo(dlg)

    dlg.kind_combo.setCurrentIndex(dlg.kind_combo.findData("global"))
    assert not dlg.deliver_edit.isVisibleTo(dlg)
    assert dlg.headers_edit.isVisibleTo(dlg) and dlg.rules_button.isVisibleTo(dlg)
    assert dlg.envelope_headers() == DEFAULT_ENVELOPE_HEADERS
    assert dlg.rules_button.text() == "&Routing Rules…"

    dlg.headers_edit.setText("Delivered-To, , X-Original-To")
    assert not dlg.ok_button.isEnabled() and dlg.headers_error.text()
    dlg.headers_edit.setText("Delivered-To, X-Original-To")
    assert dlg.ok_button.isEnabled()
    acc = dlg.account()
    assert acc.kind == "global" and acc.deliver_to == ""
    assert acc.envelope_headers == ("Delivered-To", "X-Original-To")


def test_leave_on_server_enables_delete_after(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    assert not dlg.delete_days_spin.isEnabled()
    dlg.leave_check.setChecked(True)
    assert dlg.delete_days_spin.isEnabled()
    dlg.delete_days_spin.setValue(14)
    acc = dlg.account()
    assert acc.leave_on_server and acc.delete_after_days == 14


def test_dialog_returns_the_account_and_the_typed_password(qtbot: Any) -> None:
    dlg = dialog(qtbot, other_names=["Alice"])
    assert dlg.ok_button.isEnabled() is False
    qtbot.keyClicks(dlg.name_edit, "Bob")
    qtbot.keyClicks(dlg.host_edit, "pop.isp.example")
    qtbot.keyClicks(dlg.username_edit, "bob")
    qtbot.keyClicks(dlg.password_edit, "s3cret")
    qtbot.keyClicks(dlg.deliver_edit, "bob@contoso.com")
    assert dlg.password_edit.echoMode() == dlg.password_edit.EchoMode.Password
    assert dlg.ok_button.isEnabled()
    dlg.show()
    with qtbot.waitSignal(dlg.accepted):
        qtbot.keyClick(dlg.username_edit, Qt.Key.Key_Return)  # Enter = OK
    assert dlg.account() == AccountConfig(name="Bob", host="pop.isp.example", username="bob",
                                          deliver_to="bob@contoso.com")
    assert dlg.new_password() == "s3cret"


def test_escape_cancels_and_labels_have_buddies(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    from PySide6.QtWidgets import QLabel

    buddies = {label.buddy() for label in dlg.findChildren(QLabel) if "&" in label.text()}
    for field in (dlg.name_edit, dlg.host_edit, dlg.security_combo, dlg.port_spin, dlg.username_edit,
                  dlg.password_edit, dlg.kind_combo, dlg.deliver_edit, dlg.headers_edit, dlg.delete_days_spin):
        assert field in buddies
    dlg.show()
    with qtbot.waitSignal(dlg.rejected):
        qtbot.keyClick(dlg.name_edit, Qt.Key.Key_Escape)


def test_empty_password_keeps_the_stored_one(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    assert dlg.new_password() is None


@pytest.mark.servers
def test_password_field_never_shows_the_stored_password(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                       secret_service: object) -> None:
    credentials = Credentials()
    credentials.set_pop3_password("Alice", "the-stored-secret")

    async def scenario() -> AccountDialog:
        dlg = dialog(qtbot, ALICE, credentials=credentials)
        assert dlg.password_check is not None
        assert await dlg.password_check is True
        return dlg

    dlg = loop.run_until_complete(scenario())
    assert dlg.password_edit.text() == ""
    assert dlg.password_edit.placeholderText() == "stored in keyring"
    assert dlg.new_password() is None

    async def no_password() -> AccountDialog:
        other = dialog(qtbot, replace(ALICE, name="Nobody"), credentials=credentials)
        assert other.password_check is not None
        assert await other.password_check is False
        return other

    other = loop.run_until_complete(no_password())
    assert "stored in keyring" not in other.password_edit.placeholderText()


# --- the routing rules dialog ------------------------------------------------------------------------


def test_routing_rules_dialog_edits_and_validates(qtbot: Any) -> None:
    dlg = RoutingRulesDialog("Office", [SALES], local_domains=POLICY.domains)
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 1 and dlg.ok_button.isEnabled()
    qtbot.mouseClick(dlg.add_button, Qt.MouseButton.LeftButton)
    assert dlg.table.rowCount() == 2 and not dlg.ok_button.isEnabled()
    assert dlg.contains_error.text() == "Enter the text to look for."
    qtbot.keyClicks(dlg.contains_edit, "[Support]")
    assert dlg.contains_error.isHidden()
    qtbot.keyClicks(dlg.deliver_edit, "help")
    assert "not an e-mail address" in dlg.deliver_error.text() and not dlg.ok_button.isEnabled()
    qtbot.keyClicks(dlg.deliver_edit, "@fabrikam.com")
    assert "No recipient policy covers fabrikam.com" in dlg.deliver_warning.text()
    dlg.deliver_edit.setText("help@contoso.com")
    dlg.field_combo.setCurrentIndex(dlg.field_combo.findData("subject"))
    assert dlg.ok_button.isEnabled()
    assert dlg.table.item(1, 1).text() == "[Support]"
    assert dlg.rules() == [SALES, SUPPORT]

    dlg.table.selectRow(0)
    qtbot.mouseClick(dlg.remove_button, Qt.MouseButton.LeftButton)
    assert dlg.rules() == [SUPPORT]


# --- the tab ----------------------------------------------------------------------------------------


def test_tab_shows_the_accounts(tab: AccountsTab) -> None:
    assert tab.model.rowCount() == 2
    assert tab.model.index(1, Column.NAME).data() == "Office"
    assert tab.selected_account() == ALICE
    assert tab.edit_button.isEnabled() and tab.test_button.isEnabled()
    for button in (tab.add_button, tab.edit_button, tab.remove_button, tab.test_button):
        assert button.accessibleName()


def test_tab_edits_round_trip_through_the_file(tab: AccountsTab, loop: asyncio.AbstractEventLoop,
                                               tmp_path: Path) -> None:
    cfg = sample_config()
    path = tmp_path / "edited.toml"
    save_config(cfg, path)
    tab.load(load_config(path))
    edited: list[bool] = []
    tab.edited.connect(lambda: edited.append(True))

    bob = AccountConfig(name="Bob", host="pop.isp.example", username="bob", deliver_to="bob@contoso.com",
                        leave_on_server=True, delete_after_days=30)
    hq = replace(OFFICE, name="HQ", host="mail.isp.example")
    hq_rule = RoutingRuleConfig(account="HQ", contains="hq@", deliver_to="hq@contoso.local")
    loop.run_until_complete(tab.add_account(bob))
    loop.run_until_complete(tab.add_account(hq, rules=[hq_rule]))
    loop.run_until_complete(tab.replace_account("Alice", replace(ALICE, port=1995, verify_tls=False)))
    tab.remove_account("Office")

    save_config(tab.apply(cfg), path)
    assert load_config(path) == replace(cfg, accounts=(replace(ALICE, port=1995, verify_tls=False), bob, hq),
                                        rules=(hq_rule,))
    assert len(edited) == 4


def test_renaming_a_global_account_renames_its_rules(tab: AccountsTab, loop: asyncio.AbstractEventLoop,
                                                     tmp_path: Path) -> None:
    other_rule = RoutingRuleConfig(account="Other", contains="x", deliver_to="x@contoso.com")
    other = replace(OFFICE, name="Other")
    cfg = sample_config(accounts=(ALICE, OFFICE, other), rules=(SALES, other_rule, SUPPORT))
    tab.load(cfg)
    loop.run_until_complete(tab.replace_account("Office", replace(OFFICE, name="Head Office")))
    path = tmp_path / "renamed.toml"
    save_config(tab.apply(cfg), path)
    loaded = load_config(path)
    assert [a.name for a in loaded.accounts] == ["Alice", "Head Office", "Other"]
    assert loaded.rules_for("Head Office") == (replace(SALES, account="Head Office"),
                                              replace(SUPPORT, account="Head Office"))
    assert loaded.rules_for("Other") == (other_rule,)

    # New rules from the dialog replace the old ones; a user mailbox keeps none.
    loop.run_until_complete(tab.replace_account("Head Office", replace(OFFICE, name="Head Office"),
                                                rules=[SALES]))
    assert tab.apply(cfg).rules_for("Head Office") == (replace(SALES, account="Head Office"),)
    loop.run_until_complete(tab.replace_account("Head Office", replace(ALICE, name="Head Office")))
    save_config(tab.apply(cfg), path)
    assert load_config(path).rules == (other_rule,)


def test_remove_asks_first_and_takes_the_rules_along(tab: AccountsTab, qtbot: Any) -> None:
    tab.table.selectRow(1)
    box = tab.confirm_remove()
    assert box is not None and "Office" in box.text() and "2 routing rule(s)" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
    box.button(QMessageBox.StandardButton.No).click()
    assert [a.name for a in tab.accounts()] == ["Alice", "Office"]

    tab.table.selectRow(1)
    box = tab.confirm_remove()
    assert box is not None
    box.button(QMessageBox.StandardButton.Yes).click()
    assert [a.name for a in tab.accounts()] == ["Alice"]
    assert tab.rules() == []
    assert tab.apply(sample_config()).rules == ()


def test_add_through_the_dialog(tab: AccountsTab, qtbot: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def scenario() -> None:
        dlg = tab.open_add_dialog()
        assert dlg.isVisible()
        dlg.name_edit.setText("Alice")
        assert "already called" in dlg.name_error.text()
        dlg.name_edit.setText("Carol")
        dlg.host_edit.setText("pop.isp.example")
        dlg.username_edit.setText("carol")
        dlg.deliver_edit.setText("carol@contoso.com")
        dlg.ok_button.click()
        await asyncio.gather(*tab._tasks)

    loop.run_until_complete(scenario())
    assert tab.accounts()[-1] == AccountConfig(name="Carol", host="pop.isp.example", username="carol",
                                               deliver_to="carol@contoso.com")
    assert tab.selected_account() == tab.accounts()[-1]


class _LockedKeyring(Credentials):
    def set_pop3_password(self, account: str, password: str) -> None:
        raise CredentialError("the keyring is locked; cannot store the password", cause="It is locked.",
                              fix="Unlock the keyring and try again.")


def test_keyring_failure_is_reported_with_cause_and_fix(tab: AccountsTab, controller: ConnectorController,
                                                        loop: asyncio.AbstractEventLoop) -> None:
    controller.credentials = _LockedKeyring()
    carol = replace(ALICE, name="Carol")
    stored = loop.run_until_complete(tab.add_account(carol, "pw"))
    assert stored is False
    assert carol in tab.accounts()
    box = tab.findChild(QMessageBox, "credentialError")
    assert box is not None and box.isVisible()
    details = box.informativeText()
    assert "the keyring is locked" in details and "It is locked." in details
    assert "Unlock the keyring and try again." in details
    box.close()


# --- Test against the real servers -------------------------------------------------------------------


@pytest.fixture
def office_controller(tmp_path: Path, postfix_clean: Any, secret_service: object) -> Iterator[ConnectorController]:
    config = Config(smtp=SmtpConfig(host=postfix_clean.host, port=postfix_clean.port, timeout_s=20),
                    policies=(POLICY,))
    ctl = make_controller(tmp_path, config)
    yield ctl
    ctl.close()


def dovecot_account(dovecot: Any, user: Any, name: str, deliver_to: str) -> AccountConfig:
    return AccountConfig(name=name, host="127.0.0.1", port=dovecot.pop3s_port, security="tls",
                         ca_file=str(dovecot.ca_path), username=user.name, deliver_to=deliver_to, timeout_s=20)


@pytest.mark.servers
def test_test_button_shows_ok_findings(qtbot: Any, loop: asyncio.AbstractEventLoop, dovecot: Any,
                                       pop3_user: Any, office_controller: ConnectorController) -> None:
    tab = AccountsTab(office_controller)
    qtbot.addWidget(tab)
    account = dovecot_account(dovecot, pop3_user, "Alice", "alice@contoso.com")

    async def scenario() -> list[Any]:
        assert await tab.add_account(account, pop3_user.password)
        task = tab.test_selected()
        assert task is not None
        assert not tab.test_button.isEnabled() and tab.test_button.text() == "Testing…"
        return await task

    findings = loop.run_until_complete(scenario())
    assert findings and all(f.ok for f in findings), findings
    assert tab.test_button.isEnabled() and tab.test_button.text() == "&Test"
    lines = tab.findings_text()
    assert len(lines) == len(findings)
    assert any("logged in to 127.0.0.1" in line for line in lines)
    assert any("alice@contoso.com" in line and "accepted" in line for line in lines)
    assert "everything works" in tab.test_status.text()


@pytest.mark.servers
def test_test_shows_the_relay_refusal_with_cause_and_fix(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                         dovecot: Any, pop3_user: Any,
                                                         office_controller: ConnectorController) -> None:
    tab = AccountsTab(office_controller)
    qtbot.addWidget(tab)
    account = dovecot_account(dovecot, pop3_user, "Fabrikam", "alice@fabrikam.com")

    async def scenario() -> list[Any]:
        assert await tab.add_account(account, pop3_user.password)
        return await tab.test_account(account)

    findings = loop.run_until_complete(scenario())
    refused = [f for f in findings if not f.ok]
    assert len(refused) == 1 and "5.7.1" in refused[0].text
    assert refused[0].cause and refused[0].fix
    line = next(line for line in tab.findings_text() if "5.7.1" in line)
    assert "alice@fabrikam.com" in line
    assert f"Cause: {refused[0].cause}" in line and f"Fix: {refused[0].fix}" in line
    assert "1 problem(s)" in tab.test_status.text()


def test_a_run_that_ends_without_finishing_an_account_does_not_leave_it_running() -> None:
    model = AccountTableModel()
    model.set_accounts([ALICE, OFFICE])
    model.on_account_status(Status("Alice", Phase.DOWNLOADING, 3, 10, 30_000))
    model.on_account_status(Status("Office", Phase.CONNECTING))
    model.on_account_status(Status("Office", Phase.DONE, result=AccountResult("Office", delivered=2)))
    model.on_run_finished(None)
    alice, office = model.status("Alice"), model.status("Office")
    assert alice is not None and alice.state is State.FAILED and "see the Events page" in alice.error
    assert office is not None and office.state is State.OK and office.done == 2
