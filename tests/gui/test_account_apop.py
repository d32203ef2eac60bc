"""APOP chosen in the account dialog is what the configuration file says and what the keyring holds.

The sign-in method list offers APOP after a separator, below the usual
methods (POP3 accounts only); choosing it keeps the password field, whose
password goes to the keyring as for Password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AccountConfig, Config, RecipientPolicy, SmtpConfig
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths
from pop3gui.demo.keyring_backend import MemoryKeyring
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.accounts import AccountsTab
from tests.servers.dovecot import free_port

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

POLICY = RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com")


@pytest.fixture
def controller(tmp_path: Path, memory_keyring: MemoryKeyring) -> Iterator[ConnectorController]:
    home = tmp_path / "home"
    ctl = ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"),
                              Config(smtp=SmtpConfig(host="127.0.0.1", port=free_port(), timeout_s=5),
                                     policies=(POLICY,)))
    yield ctl
    ctl.close()


def test_choosing_apop_saves_auth_apop_and_keeps_the_password(
        qtbot: Any, loop: asyncio.AbstractEventLoop, controller: ConnectorController) -> None:
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    dlg = tab.open_add_dialog()
    dlg.name_edit.setText("Alice")
    dlg.host_edit.setText("pop.isp.example")
    dlg.deliver_edit.setText("alice@contoso.com")
    combo = dlg.method_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert "APOP (password, never sent over the network)" in labels  # in the list the user opens
    combo.setCurrentIndex(combo.findData("apop"))
    assert "must offer APOP" in dlg.method_note.text() and dlg.method_note.isVisibleTo(dlg)
    assert dlg.password_edit.isVisibleTo(dlg)
    dlg.username_edit.setText("alice.smith")
    dlg.password_edit.setText("s3cret apop")
    assert dlg.problems() == []

    async def scenario() -> None:
        dlg.accept()
        while tab.model.account_named("Alice") is None:
            await asyncio.sleep(0.01)

    loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    saved = tab.model.account_named("Alice")
    assert saved is not None and saved.auth == "apop" and saved.username == "alice.smith"
    controller.save(tab.apply(controller.config))
    assert 'auth = "apop"' in controller.paths.config_file.read_text()
    (loaded,) = load_config(controller.paths.config_file).accounts
    assert loaded.auth == "apop" and loaded.protocol == "pop3"
    assert Credentials().pop3_password("Alice") == "s3cret apop"


def test_an_apop_account_opens_with_apop_chosen_and_saves_unchanged(
        qtbot: Any, controller: ConnectorController) -> None:
    account = AccountConfig(name="Bob", host="pop.isp.example", username="bob", deliver_to="bob@contoso.com",
                            auth="apop")
    tab = AccountsTab(controller)
    qtbot.addWidget(tab)
    dlg = tab.make_dialog(account)
    qtbot.addWidget(dlg)
    assert dlg.method() == "apop" and dlg.method_combo.currentText().startswith("APOP")
    assert dlg.account() == account
    dlg.method_combo.setCurrentIndex(dlg.method_combo.findData("password"))
    assert dlg.account() == replace(account, auth="password")
