"""Import… on the Mail Accounts page: the preview of a fetchmail/getmail file, and OK adding its accounts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from pop3gui.core.config.model import AccountConfig, Config, RecipientPolicy
from pop3gui.core.state.paths import Paths
from pop3gui.demo.keyring_backend import MemoryKeyring
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.dialogs.import_preview import ImportPreviewDialog
from pop3gui.gui.properties import PropertiesWindow
from pop3gui.gui.tabs.accounts import AccountsTab

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

CORPUS = Path(__file__).parents[1] / "core" / "migrate" / "corpus"
ALICE = AccountConfig(name="alice", host="pop.other.example", username="alice", deliver_to="alice@contoso.com")
RC = """set daemon 300
poll pop.isp.example proto pop3 user alice password "alice pw" is alice@contoso.com here ssl keep
poll imap.isp.example proto imap user bob password b0b is bob@fabrikam.example here folder INBOX Lists
     mda "/usr/bin/procmail -d %T" preconnect "ssh -f tunnel"
"""


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ConnectorController]:
    home = tmp_path / "home"
    config = Config(policies=(RecipientPolicy("Default Policy", ("contoso.com",)),), accounts=(ALICE,))
    ctl = ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"), config)
    yield ctl
    ctl.close()


@pytest.fixture
def window(qtbot: Any, controller: ConnectorController, monkeypatch: pytest.MonkeyPatch) -> PropertiesWindow:
    # Closing a window with unsaved changes asks first: these tests' windows discard them at teardown.
    monkeypatch.setattr(QMessageBox, "question", lambda *_args, **_kwargs: QMessageBox.StandardButton.Discard)
    widget = PropertiesWindow(controller)
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def tab(window: PropertiesWindow) -> AccountsTab:
    return window.accounts


def test_preview_and_ok_add_the_accounts_with_passwords_in_the_keyring(
        window: PropertiesWindow, tab: AccountsTab, qtbot: Any, tmp_path: Path, memory_keyring: MemoryKeyring,
        loop: asyncio.AbstractEventLoop) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text(RC)
    tab.import_button.click()
    dialog = window.findChild(ImportPreviewDialog)
    assert isinstance(dialog, ImportPreviewDialog) and dialog.isVisible()
    dialog.set_source("fetchmailrc", str(rc))
    text = dialog.preview.toPlainText()
    assert "Accounts to add (2)" in text
    assert "alice (pop.isp.example): POP3 alice @ pop.isp.example:995 (tls)" in text  # "alice" is taken
    assert "Also in the file" in text and "Recipient policy for: fabrikam.example" in text
    assert "Not mapped (2)" in text and "fetchmailrc:4:" in text and "mda" in text and "preconnect" in text
    assert "Passwords that go to the keyring" in text and "alice pw" not in text
    shots = Path(os.environ.get("POP3GUI_SHOTS", tmp_path))
    dialog.grab().save(str(shots / "import-preview.png"))

    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    loop.run_until_complete(asyncio.gather(*tab._tasks))
    names = [a.name for a in tab.accounts()]
    assert names == ["alice", "alice (pop.isp.example)", "bob"]
    assert tab.accounts()[0] == ALICE
    assert tab.accounts()[2].folders == ("INBOX", "Lists")
    assert memory_keyring.get_password("pop3gui", "alice (pop.isp.example)") == "alice pw"
    assert memory_keyring.get_password("pop3gui", "bob") == "b0b"
    assert memory_keyring.get_password("pop3gui", "alice") is None


def test_a_syntax_error_is_shown_and_ok_is_off(window: PropertiesWindow, tmp_path: Path) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll a.example user u password p\n  via b.example\n")
    dialog = window.open_import_dialog()
    dialog.set_source("fetchmailrc", str(rc))
    assert "Cannot import this file" in dialog.preview.toPlainText()
    assert f"{rc}:2: server option after user options" in dialog.preview.toPlainText()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert dialog.import_result() is None
    dialog.set_source("getmailrc", str(CORPUS / "imap-folders.getmailrc"))
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert "password_command" in dialog.preview.toPlainText()
    dialog.reject()


def test_ok_puts_the_files_policy_smtp_server_and_limit_into_the_draft_saved_by_apply(
        window: PropertiesWindow, controller: ConnectorController, tmp_path: Path, memory_keyring: MemoryKeyring,
        loop: asyncio.AbstractEventLoop) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll pop.isp.example proto pop3 user carol password c4r0l is carol@fabrikam.example here\n"
                  "     smtphost mail.contoso.local limit 2097152\n")
    dialog = window.open_import_dialog()
    dialog.set_source("fetchmailrc", str(rc))
    preview = dialog.preview.toPlainText()
    assert "OK puts these on their pages too" in preview
    assert "mail.contoso.local:25 differs from [smtp] (localhost:25), which was kept" in preview
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    loop.run_until_complete(asyncio.gather(*window.accounts._tasks))

    assert set(window.policies.apply(window.draft).local_domains()) >= {"contoso.com", "fabrikam.example"}
    assert window.delivery.host.text() == "localhost"  # the local server already set up stays
    assert window.draft.delivery.max_message_kb == 2048
    assert controller.config.delivery.max_message_kb != 2048  # nothing saved before Apply
    assert window.apply_button.isEnabled()
    assert window.apply_changes()
    saved = controller.config
    assert saved.delivery.max_message_kb == 2048 and "fabrikam.example" in saved.local_domains()
    assert [a.name for a in saved.accounts] == ["alice", "carol"]
    assert memory_keyring.get_password("pop3gui", "carol") == "c4r0l"
