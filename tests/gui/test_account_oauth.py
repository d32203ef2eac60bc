"""OAuth2 accounts in the GUI: the sign-in method, providers, and signing in from the account dialog.

Signing in runs against a local OAuth2 authorization server (tests/support/oauth_server.py);
the test plays the browser: the dialog's page opener is replaced by a function that
fetches the sign-in page and follows its redirect back to the connector.  The keyring
is an in-memory one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AccountConfig, Config, OAuthProviderConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.engine.status import AccountResult, AccountStatus, Phase
from pop3gui.core.failures import Failure
from pop3gui.core.oauth.store import sign_in_key
from pop3gui.core.state.paths import Paths
from pop3gui.demo.keyring_backend import MemoryKeyring
from pop3gui.gui.account_model import Column
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.dialogs.account import AccountDialog
from pop3gui.gui.dialogs.provider import ProviderDialog
from pop3gui.gui.tabs.accounts import AccountsTab
from tests.servers.dovecot import free_port
from tests.support.oauth_server import FakeAuthServer

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

POLICY = RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com")
ENTRA = OAuthProviderConfig(name="contoso-entra", client_id="11111111-2222", kind="microsoft",
                            tenant="contoso.onmicrosoft.com")
GMAIL = OAuthProviderConfig(name="workspace", client_id="123-abc.apps.googleusercontent.com", kind="google")
ALICE = AccountConfig(name="Alice", host="pop.isp.example", username="alice", deliver_to="alice@contoso.com")


@pytest.fixture
def idp() -> Iterator[FakeAuthServer]:
    with FakeAuthServer(user="dave@contoso.com") as server:
        yield server


def lab_provider(idp: FakeAuthServer, name: str = "lab") -> OAuthProviderConfig:
    return OAuthProviderConfig(name=name, client_id=idp.client_id, kind="generic", authorize_url=idp.authorize_url,
                               token_url=idp.token_url, device_url=idp.device_url, scopes=("mail", "offline_access"))


def lab_account(provider: str = "lab", name: str = "m365") -> AccountConfig:
    # A POP3 port nothing listens on: a Test gets as far as connecting.
    return AccountConfig(name=name, host="127.0.0.1", port=free_port(), security="none", username="dave@contoso.com",
                         deliver_to="dave@contoso.com", auth="oauth2", oauth_provider=provider, timeout_s=5)


class Browser:
    """The user's browser: opens the sign-in page and follows its redirect back to the connector."""

    def __init__(self) -> None:
        self.pages: list[str] = []

    async def __call__(self, url: str) -> None:
        self.pages.append(url)
        async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
            await browser.get(url)


def make_controller(tmp_path: Path, config: Config) -> ConnectorController:
    home = tmp_path / "home"
    smtp = SmtpConfig(host="127.0.0.1", port=free_port(), timeout_s=5)
    return ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"),
                               replace(config, smtp=smtp, policies=(POLICY,)))


@pytest.fixture
def controller(tmp_path: Path, memory_keyring: MemoryKeyring) -> Iterator[ConnectorController]:
    ctl = make_controller(tmp_path, Config(accounts=(ALICE,), oauth_providers=(ENTRA, GMAIL)))
    yield ctl
    ctl.close()


def dialog(qtbot: Any, account: AccountConfig | None = None, **kw: Any) -> AccountDialog:
    kw.setdefault("local_domains", POLICY.domains)
    kw.setdefault("providers", (ENTRA, GMAIL))
    dlg = AccountDialog(account, **kw)
    qtbot.addWidget(dlg)
    return dlg


def choose(dlg: AccountDialog, method: str) -> None:
    dlg.method_combo.setCurrentIndex(dlg.method_combo.findData(method))


# --- the sign-in method ---------------------------------------------------------------------------


def test_choosing_microsoft_or_google_fills_the_server_and_says_what_the_admin_must_allow(qtbot: Any) -> None:
    dlg = dialog(qtbot)
    assert dlg.method() == "password" and dlg.method_note.isHidden()
    assert dlg.password_edit.isVisibleTo(dlg) and not dlg.provider_combo.isVisibleTo(dlg)
    assert not dlg.sign_in_box.isVisibleTo(dlg)
    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("starttls"))
    dlg.port_spin.setValue(1110)  # typed by someone: a preset still replaces it

    choose(dlg, "microsoft")
    assert (dlg.host_edit.text(), dlg.port_spin.value(), dlg.security_combo.currentData()) == \
        ("outlook.office365.com", 995, "tls")
    assert dlg.method_note.text() == ("Your Entra ID admin must register an app with POP.AccessAsUser.All and "
                                      "offline_access (docs/oauth.md).")
    assert dlg.method_note.isVisibleTo(dlg)
    assert not dlg.password_edit.isVisibleTo(dlg) and not dlg.password_label.isVisibleTo(dlg)
    assert dlg.provider_combo.isVisibleTo(dlg) and dlg.sign_in_box.isVisibleTo(dlg)

    choose(dlg, "google")
    assert (dlg.host_edit.text(), dlg.port_spin.value(), dlg.security_combo.currentData()) == \
        ("pop.gmail.com", 995, "tls")
    assert "https://mail.google.com/" in dlg.method_note.text() and "app password" in dlg.method_note.text()

    dlg.security_combo.setCurrentIndex(dlg.security_combo.findData("starttls"))
    assert dlg.port_spin.value() == 110  # the preset's port is not one typed: it follows the security again
    choose(dlg, "password")
    assert dlg.host_edit.text() == "pop.gmail.com"  # going back keeps what is there
    assert dlg.password_edit.isVisibleTo(dlg) and not dlg.sign_in_box.isVisibleTo(dlg)


def test_the_draft_account_names_how_it_signs_in(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    qtbot.keyClicks(dlg.password_edit, "typed before switching")
    choose(dlg, "microsoft")
    assert [dlg.provider_combo.itemText(i) for i in range(dlg.provider_combo.count())] == ["contoso-entra"]
    acc = dlg.account()
    assert (acc.auth, acc.oauth_provider, acc.host) == ("oauth2", "contoso-entra", "outlook.office365.com")
    assert dlg.new_password() is None  # an OAuth2 account keeps no password
    assert dlg.ok_button.isEnabled()

    choose(dlg, "google")
    assert dlg.account().oauth_provider == "workspace"
    choose(dlg, "generic")  # no provider of that kind yet
    assert dlg.provider_combo.currentIndex() == -1 and dlg.provider_combo.placeholderText() == "none yet: press New…"
    assert "press New" in dlg.provider_error.text() and not dlg.ok_button.isEnabled()
    assert not dlg.edit_provider_button.isEnabled()

    choose(dlg, "apop")
    acc = dlg.account()
    assert (acc.auth, acc.oauth_provider) == ("apop", "")
    assert dlg.new_password() == "typed before switching" and dlg.ok_button.isEnabled()
    assert "APOP" in dlg.method_combo.currentText()


def test_an_oauth_account_opens_on_its_provider_and_a_missing_provider_blocks_ok(qtbot: Any) -> None:
    google = AccountConfig(name="g", host="pop.gmail.com", username="g@contoso.com", deliver_to="g@contoso.com",
                           auth="oauth2", oauth_provider="workspace", sasl="oauthbearer")
    dlg = dialog(qtbot, google)
    assert dlg.method() == "google" and dlg.provider_combo.currentText() == "workspace"
    assert dlg.host_edit.text() == "pop.gmail.com" and dlg.account() == google  # opening changes nothing
    assert not dlg.password_edit.isVisibleTo(dlg)

    gone = dialog(qtbot, replace(google, oauth_provider="deleted-app"))
    assert gone.method() == "generic" and gone.provider_combo.currentText() == "deleted-app (not set up)"
    assert "No OAuth2 provider called deleted-app" in gone.provider_error.text()
    assert not gone.ok_button.isEnabled()
    assert gone.account().oauth_provider == "deleted-app"  # kept until another is chosen


def test_new_fields_have_buddies_and_distinct_mnemonics(qtbot: Any) -> None:
    dlg = dialog(qtbot, ALICE)
    choose(dlg, "microsoft")
    labels = [label for label in dlg.findChildren(QLabel) if "&" in label.text() and label.isVisibleTo(dlg)]
    buddies = {label.buddy() for label in labels}
    assert dlg.method_combo in buddies and dlg.provider_combo in buddies
    texts = [label.text() for label in labels] + [b.text() for b in (
        dlg.new_provider_button, dlg.edit_provider_button, dlg.sign_in_box.sign_in_button,
        dlg.sign_in_box.sign_out_button, dlg.rules_button) if b.isVisibleTo(dlg)]
    keys = [text[text.index("&") + 1].lower() for text in texts]
    assert len(keys) == len(set(keys)), texts


# --- providers ----------------------------------------------------------------------------------------


def test_the_provider_dialog_adds_a_provider_to_the_accounts_config(
        qtbot: Any, controller: ConnectorController, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)

    async def scenario() -> AccountDialog:
        dlg = tab.open_add_dialog()
        dlg.name_edit.setText("lab mailbox")
        dlg.username_edit.setText("dave@contoso.com")
        dlg.deliver_edit.setText("dave@contoso.com")
        choose(dlg, "generic")
        dlg.host_edit.setText("pop.lab.example")
        provider_dialog = dlg.add_provider()
        assert isinstance(provider_dialog, ProviderDialog)
        assert provider_dialog.kind() == "generic" and not provider_dialog.kind_combo.isEnabled()
        assert not provider_dialog.ok_button.isEnabled()
        provider_dialog.name_edit.setText("contoso-entra")
        assert "already called contoso-entra" in provider_dialog.name_error.text()
        provider_dialog.name_edit.setText("lab")
        provider_dialog.client_edit.setText("pop3gui-test")
        provider_dialog.authorize_edit.setText("http://idp.example/authorize")
        assert "https://" in provider_dialog.authorize_error.text()
        provider_dialog.authorize_edit.setText("https://idp.example/authorize")
        provider_dialog.token_edit.setText("https://idp.example/token")
        assert "permissions" in provider_dialog.scopes_error.text()
        provider_dialog.scopes_edit.setText("mail offline_access")
        assert provider_dialog.problems() == [] and provider_dialog.ok_button.isEnabled()
        provider_dialog.ok_button.click()
        assert dlg.provider_combo.currentText() == "lab" and dlg.edit_provider_button.isEnabled()
        assert dlg.ok_button.isEnabled(), dlg.problems()
        dlg.ok_button.click()
        await asyncio.gather(*tab._tasks)
        return dlg

    loop.run_until_complete(scenario())
    lab = OAuthProviderConfig(name="lab", client_id="pop3gui-test", kind="generic",
                              authorize_url="https://idp.example/authorize", token_url="https://idp.example/token",
                              scopes=("mail", "offline_access"))
    assert tab.providers() == [ENTRA, GMAIL, lab]
    path = tmp_path / "saved.toml"
    save_config(tab.apply(controller.config), path)
    saved = load_config(path)
    assert saved.oauth_provider("lab") == lab
    assert (saved.account("lab mailbox").auth, saved.account("lab mailbox").oauth_provider) == ("oauth2", "lab")


def test_the_properties_window_saves_a_provider_added_in_an_account_dialog(
        qtbot: Any, controller: ConnectorController, loop: asyncio.AbstractEventLoop) -> None:
    from pop3gui.gui.properties import PropertiesWindow

    window = PropertiesWindow(controller)
    qtbot.addWidget(window)

    async def scenario() -> None:
        dlg = window.accounts.open_add_dialog()
        dlg.name_edit.setText("Gmail")
        dlg.username_edit.setText("g@contoso.com")
        dlg.deliver_edit.setText("g@contoso.com")
        choose(dlg, "google")
        provider_dialog = dlg.add_provider()
        assert isinstance(provider_dialog, ProviderDialog) and provider_dialog.kind() == "google"
        assert not provider_dialog.token_edit.isVisibleTo(provider_dialog)
        assert "https://mail.google.com/" in provider_dialog.scopes_edit.placeholderText()
        provider_dialog.name_edit.setText("second-workspace")
        provider_dialog.client_edit.setText("456-def.apps.googleusercontent.com")
        provider_dialog.ok_button.click()
        assert dlg.provider_combo.currentText() == "second-workspace"
        dlg.ok_button.click()
        await asyncio.gather(*window.accounts._tasks)

    loop.run_until_complete(scenario())
    assert window.dirty and window.apply_changes()
    saved = load_config(controller.paths.config_file)
    assert saved.oauth_provider("second-workspace") == OAuthProviderConfig(
        name="second-workspace", client_id="456-def.apps.googleusercontent.com", kind="google")
    gmail = saved.account("Gmail")
    assert (gmail.auth, gmail.oauth_provider, gmail.host, gmail.port) == (
        "oauth2", "second-workspace", "pop.gmail.com", 995)


def test_an_app_only_providers_secret_goes_to_the_keyring_at_once(
        qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring) -> None:
    from pop3gui.core.state.credentials import Credentials

    async def scenario() -> None:
        dlg = dialog(qtbot, credentials=Credentials())
        choose(dlg, "microsoft")
        provider_dialog = dlg.add_provider()
        assert isinstance(provider_dialog, ProviderDialog)
        assert not provider_dialog.secret_edit.isVisibleTo(provider_dialog)
        provider_dialog.name_edit.setText("contoso-app")
        provider_dialog.client_edit.setText("33333333-4444")
        provider_dialog.tenant_edit.setText("contoso.onmicrosoft.com")
        provider_dialog.secret_edit.setText("ignored while not app-only")
        assert provider_dialog.new_secret() is None
        provider_dialog.app_only_check.setChecked(True)
        assert provider_dialog.secret_edit.isVisibleTo(provider_dialog)
        assert "outlook.office365.com/.default" in provider_dialog.scopes_edit.placeholderText()
        provider_dialog.secret_edit.setText("the-app-secret")
        provider_dialog.ok_button.click()
        assert dlg.secret_store is not None and await dlg.secret_store
        assert Credentials().oauth_client_secret("contoso-app") == "the-app-secret"
        added = dlg.providers()[-1]
        assert (added.name, added.app_only, added.tenant) == ("contoso-app", True, "contoso.onmicrosoft.com")
        assert "the-app-secret" not in repr(dlg.providers())

    loop.run_until_complete(scenario())


def test_renaming_a_provider_carries_the_accounts_that_use_it(
        qtbot: Any, controller: ConnectorController, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    one, two = (AccountConfig(name=n, host="outlook.office365.com", username=f"{n}@contoso.com",
                              deliver_to=f"{n}@contoso.com", auth="oauth2", oauth_provider="contoso-entra")
                for n in ("one", "two"))
    config = replace(controller.config, accounts=(one, two),
                     smtp=replace(controller.config.smtp, username="relay@contoso.com", auth="oauth2",
                                  oauth_provider="contoso-entra"))
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    tab.load(config)

    async def scenario() -> None:
        dlg = tab.open_edit_dialog()
        assert dlg is not None and dlg.provider_combo.currentText() == "contoso-entra"
        provider_dialog = dlg.edit_provider()
        assert isinstance(provider_dialog, ProviderDialog)
        assert provider_dialog.tenant_edit.text() == "contoso.onmicrosoft.com"
        assert not provider_dialog.authorize_edit.isVisibleTo(provider_dialog)
        provider_dialog.name_edit.setText("entra")
        provider_dialog.ok_button.click()
        dlg.ok_button.click()
        await asyncio.gather(*tab._tasks)

    loop.run_until_complete(scenario())
    applied = tab.apply(config)
    assert [a.oauth_provider for a in applied.accounts] == ["entra", "entra"]
    assert applied.smtp.oauth_provider == "entra"
    assert [p.name for p in applied.oauth_providers] == ["entra", "workspace"]
    save_config(applied, tmp_path / "renamed.toml")  # valid as a whole


# --- signing in ------------------------------------------------------------------------------------


def test_sign_in_from_the_dialog_keeps_the_sign_in_and_shows_who(
        qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring, idp: FakeAuthServer,
        tmp_path: Path) -> None:
    """The provider is added in the dialog (not saved yet): the sign-in and the Test both use it."""
    controller = make_controller(tmp_path, Config())
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    browser = Browser()
    tab.open_page = browser

    async def scenario() -> None:
        dlg = tab.open_add_dialog()
        dlg.name_edit.setText("m365")
        dlg.host_edit.setText("pop.lab.example")
        dlg.username_edit.setText("dave@contoso.com")
        dlg.deliver_edit.setText("dave@contoso.com")
        choose(dlg, "generic")
        provider_dialog = dlg.add_provider()
        assert isinstance(provider_dialog, ProviderDialog)
        lab = lab_provider(idp)
        provider_dialog.name_edit.setText(lab.name)
        provider_dialog.client_edit.setText(lab.client_id)
        provider_dialog.authorize_edit.setText(lab.authorize_url)
        provider_dialog.token_edit.setText(lab.token_url)
        provider_dialog.device_edit.setText(lab.device_url)
        provider_dialog.scopes_edit.setText("mail offline_access")
        provider_dialog.ok_button.click()
        assert dlg.selected_provider() == lab
        box = dlg.sign_in_box
        assert box.status_label.text() == "Not signed in yet." and not box.sign_out_button.isEnabled()

        qtbot.mouseClick(box.sign_in_button, Qt.MouseButton.LeftButton)
        task = box.task
        assert task is not None and box.cancel_button.isVisibleTo(dlg) and not box.sign_in_button.isVisibleTo(dlg)
        record = await task
        assert record is not None and record.identity == "dave@contoso.com"
        assert browser.pages and browser.pages[0].startswith(idp.authorize_url + "?")
        assert box.status_label.text().startswith("Signed in as dave@contoso.com since ")
        assert box.error_label.isHidden() and box.hint_label.isHidden()
        assert box.sign_out_button.isEnabled() and box.sign_in_button.text() == "Sign &in again…"
        assert dlg.sign_in_owner() == "m365"

        stored = await controller.sign_in_status("m365")
        assert stored is not None and stored.identity == "dave@contoso.com"
        assert stored.refresh_token in idp.live_refresh_tokens()

        assert dlg.ok_button.isEnabled(), dlg.problems()
        dlg.ok_button.click()
        await asyncio.gather(*tab._tasks)
        # Test before the window is saved: the provider comes from the page's draft, the token from the sign-in.
        account = tab.accounts()[-1]
        assert (account.auth, account.oauth_provider) == ("oauth2", "lab")
        saved_findings = await controller.test_account(account)
        assert "no OAuth2 provider called 'lab'" in saved_findings[0].text
        findings = await tab.test_account(replace(account, host="127.0.0.1", port=free_port(), security="none",
                                                  timeout_s=5))
        assert findings and "OAuth2 provider" not in findings[0].text and "sign" not in findings[0].text.lower()
        assert "127.0.0.1" in findings[0].text  # it got as far as connecting to the POP3 server

    loop.run_until_complete(scenario())
    assert [r["grant_type"] for r in idp.token_requests] == ["authorization_code"]
    controller.close()


def test_sign_out_forgets_the_sign_in(qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring,
                                      idp: FakeAuthServer, tmp_path: Path) -> None:
    lab = lab_provider(idp)
    controller = make_controller(tmp_path, Config(accounts=(lab_account(),), oauth_providers=(lab,)))

    async def scenario() -> None:
        await controller.sign_in("m365", lab, Browser())
        dlg = dialog(qtbot, controller.config.accounts[0], providers=(lab,), signer=controller)
        assert dlg.status_check is not None
        record = await dlg.status_check
        box = dlg.sign_in_box
        assert record is not None and box.status_label.text().startswith("Signed in as dave@contoso.com since ")
        assert box.sign_out_button.isEnabled()
        signed_out: list[str] = []
        dlg.signed_out.connect(signed_out.append)
        qtbot.mouseClick(box.sign_out_button, Qt.MouseButton.LeftButton)
        await asyncio.sleep(0)
        while memory_keyring.get_password("pop3gui-oauth", sign_in_key("m365")) is not None or not signed_out:
            await asyncio.sleep(0.01)
        assert box.status_label.text() == "Signed out. Not signed in yet."
        assert not box.sign_out_button.isEnabled() and box.sign_in_button.text() == "Sign &in…"
        assert signed_out == ["m365"]
        assert await controller.sign_in_status("m365") is None
        assert controller.sign_ins.token_expiry(sign_in_key("m365")) is None

    loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    controller.close()


def test_refused_consent_shows_the_cause_and_fix_in_the_dialog(
        qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring, idp: FakeAuthServer,
        tmp_path: Path) -> None:
    idp.deny_consent = True
    lab = lab_provider(idp)
    controller = make_controller(tmp_path, Config(accounts=(lab_account(),), oauth_providers=(lab,)))

    async def scenario() -> None:
        dlg = dialog(qtbot, controller.config.accounts[0], providers=(lab,), signer=controller,
                     open_page=Browser())
        assert dlg.status_check is not None
        await dlg.status_check
        record = await dlg.sign_in()  # type: ignore[misc]
        assert record is None
        box = dlg.sign_in_box
        error = box.error_label.text()
        assert not box.error_label.isHidden()
        assert error.startswith("The sign-in did not work.\nthe sign-in service refused: access_denied")
        assert "AADSTS65001" in error
        assert "\nCause: " in error and "\nFix: " in error and "admin" in error
        assert "Traceback" not in error
        assert box.status_label.text() == "Not signed in yet." and box.sign_in_button.isVisibleTo(dlg)
        assert await controller.sign_in_status("m365") is None

        idp.deny_consent = False  # the admin granted consent: trying again works and clears the error
        assert await dlg.sign_in() is not None  # type: ignore[misc]
        assert box.error_label.isHidden()

    loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    controller.close()


def test_cancel_stops_waiting_for_the_browser(qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring,
                                              idp: FakeAuthServer, tmp_path: Path) -> None:
    lab = lab_provider(idp)
    controller = make_controller(tmp_path, Config(accounts=(lab_account(),), oauth_providers=(lab,)))
    pages: list[str] = []

    def no_browser(url: str) -> bool:
        pages.append(url)
        return False

    async def scenario() -> None:
        dlg = dialog(qtbot, controller.config.accounts[0], providers=(lab,), signer=controller,
                     open_page=no_browser)
        task = dlg.sign_in()
        assert task is not None
        box = dlg.sign_in_box
        while not pages:
            await asyncio.sleep(0.01)
        assert not box.hint_label.isHidden() and "No web browser could be opened" in box.hint_label.text()
        assert pages[0].replace("&", "&amp;") in box.hint_label.text()  # the link to open by hand
        assert box.cancel_button.isVisibleTo(dlg)
        qtbot.mouseClick(box.cancel_button, Qt.MouseButton.LeftButton)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert box.status_label.text() == "Sign-in cancelled. Not signed in yet."
        assert box.hint_label.isHidden() and box.sign_in_button.isVisibleTo(dlg)
        assert not box.cancel_button.isVisibleTo(dlg)
        assert idp.token_requests == []

        # Closing the dialog while it waits cancels the sign-in too.
        task = dlg.sign_in()
        assert task is not None
        await asyncio.sleep(0.05)
        dlg.reject()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    controller.close()


def test_a_renamed_account_keeps_its_sign_in(qtbot: Any, loop: asyncio.AbstractEventLoop, memory_keyring: MemoryKeyring,
                                            idp: FakeAuthServer, tmp_path: Path) -> None:
    lab = lab_provider(idp)
    controller = make_controller(tmp_path, Config(accounts=(lab_account(),), oauth_providers=(lab,)))
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    tab.open_page = Browser()

    async def scenario() -> None:
        await controller.sign_in("m365", lab, Browser())
        assert await tab.replace_account("m365", replace(lab_account(), name="Dave (M365)"))
        moved = await controller.sign_in_status("Dave (M365)")
        assert moved is not None and moved.identity == "dave@contoso.com"

        # A new account signed in under the name typed first, then named otherwise before OK.
        dlg = tab.open_add_dialog()
        dlg.name_edit.setText("first name")
        dlg.host_edit.setText("pop.lab.example")
        dlg.username_edit.setText("erin@contoso.com")
        dlg.deliver_edit.setText("erin@contoso.com")
        choose(dlg, "generic")
        assert dlg.selected_provider() == lab
        task = dlg.sign_in()
        assert task is not None and await task is not None
        dlg.name_edit.setText("Erin")
        dlg.ok_button.click()
        await asyncio.gather(*tab._tasks)
        assert await controller.sign_in_status("Erin") is not None

    loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    controller.close()


def test_without_a_connector_the_sign_in_buttons_are_disabled(qtbot: Any) -> None:
    dlg = dialog(qtbot, replace(lab_account(), oauth_provider="contoso-entra"))
    box = dlg.sign_in_box
    assert not box.sign_in_button.isEnabled() and not box.sign_out_button.isEnabled()
    assert "properties window" in box.status_label.text()
    assert dlg.sign_in() is None


# --- the Mail Accounts page ----------------------------------------------------------------------


def test_an_account_that_must_sign_in_says_so_until_it_is_signed_in(tab_model: Any) -> None:
    model, m365 = tab_model
    expired = AccountResult(m365.name)
    expired.fail("the sign-in is no longer valid: invalid_grant", diagnosis=Failure.SIGN_IN_NEEDED,
                 cause="The sign-in expired.", fix="Sign in again.")
    model.on_account_status(AccountStatus(m365.name, Phase.CONNECTING))
    model.on_account_status(AccountStatus(m365.name, Phase.FAILED, result=expired))
    last = model.index(1, Column.LAST_RESULT)
    assert last.data().endswith(", needs sign-in")
    tooltip = last.data(Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith("Needs sign-in: open the account (Edit…) and press Sign in….")
    assert "The sign-in expired." in tooltip and "Sign in again." in tooltip

    # Another failure of the same account, and a password account's failure, are just "failed".
    refused = AccountResult(m365.name)
    refused.fail("consent missing", diagnosis=Failure.OAUTH_CONSENT_MISSING)
    model.on_account_status(AccountStatus(m365.name, Phase.FAILED, result=refused))
    assert last.data().endswith(", failed")
    wrong = AccountResult(ALICE.name)
    wrong.fail("no sign-in", diagnosis=Failure.SIGN_IN_NEEDED)  # a password account: not its remedy
    model.on_account_status(AccountStatus(ALICE.name, Phase.FAILED, result=wrong))
    assert model.index(0, Column.LAST_RESULT).data().endswith(", failed")

    model.on_account_status(AccountStatus(m365.name, Phase.FAILED, result=expired))
    model.signed_in(m365.name)
    assert last.data().endswith(", failed")
    assert last.data(Qt.ItemDataRole.ToolTipRole).endswith("Signed in again since; the next run retrieves the mail.")


@pytest.fixture
def tab_model() -> tuple[Any, AccountConfig]:
    from pop3gui.gui.account_model import AccountTableModel

    model = AccountTableModel()
    m365 = replace(lab_account(), oauth_provider="contoso-entra")
    model.set_accounts([ALICE, m365])
    return model, m365
