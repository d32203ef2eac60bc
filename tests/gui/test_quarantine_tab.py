"""The Quarantine page: the list, View Headers, Export and Delete, over a real quarantine folder.

Messages are put in quarantine the way the engine does (``Quarantine.add``);
the dialogs the page opens are non-blocking and are answered here by clicking
their buttons.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPlainTextEdit

from pop3gui.core.events.model import EventId
from pop3gui.core.events.store import EventStore
from pop3gui.core.config.model import Config
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Quarantine, QuarantineRecord
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.quarantine import QuarantineTab

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

MESSAGE = (b"From: Sender <s@fabrikam.example>\r\nTo: erin@contoso.eu\r\nSubject: Order 42\r\n"
           b"Message-ID: <m42@fabrikam.example>\r\n\r\nPlease ship.\r\n")


def record(qid: str, subject: str = "Order 42", at: float = 1700000000.0) -> QuarantineRecord:
    return QuarantineRecord(
        id=qid, account="alice", uid="UID-1", message_id="<m42@fabrikam.example>", sender="s@fabrikam.example",
        subject=subject, date="Mon, 1 Jan 2024 10:00:00 +0000", recipients=["erin@contoso.eu"],
        reason="Refused by the local server: 550 5.7.1 Unable to relay for erin@contoso.eu",
        cause="contoso.eu is not an accepted domain.", fix="Add contoso.eu to the recipient policy, then resubmit.",
        transcript="<S>: 550 5.7.1", quarantined_at=at)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ConnectorController]:
    home = tmp_path / "home"
    ctl = ConnectorController(Paths(home / "config.toml", home / "state", home / "logs"), Config())
    yield ctl
    ctl.close()


@pytest.fixture
def quarantine(controller: ConnectorController) -> Quarantine:
    q = Quarantine(controller.paths.quarantine_dir)
    q.add(MESSAGE, record("q-older", "Older one", at=1700000000.0))
    q.add(MESSAGE, record("q-newer", "Order 42", at=1700000500.0))
    return q


def page(qtbot: Any, controller: ConnectorController) -> QuarantineTab:
    tab = QuarantineTab(controller)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def select(tab: QuarantineTab, row: int) -> None:
    tab.view.selectRow(row)


def click(box: QMessageBox | None, button: QMessageBox.StandardButton) -> None:
    assert box is not None and box.isVisible()
    box.button(button).click()


def test_the_list_shows_newest_first_and_the_buttons_follow_the_selection(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine) -> None:
    tab = page(qtbot, controller)
    model = tab.model
    assert model.rowCount() == 2
    assert [model.index(r, 3).data() for r in range(2)] == ["Order 42", "Older one"]
    assert model.index(0, 1).data() == "alice" and model.index(0, 2).data() == "s@fabrikam.example"
    assert "contoso.eu is not an accepted domain" in model.index(0, 4).data(Qt.ItemDataRole.ToolTipRole)
    assert not tab.export_button.isEnabled() and not tab.delete_button.isEnabled()
    select(tab, 0)
    assert tab.export_button.isEnabled() and tab.delete_button.isEnabled() and tab.headers_button.isEnabled()


def test_view_headers_shows_the_headers_and_why_it_is_here(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine) -> None:
    tab = page(qtbot, controller)
    select(tab, 0)
    tab.headers_button.click()
    dialog = tab.headers_dialog
    assert dialog is not None and dialog.isVisible() and "Order 42" in dialog.windowTitle()
    text = dialog.findChild(QPlainTextEdit).toPlainText()
    assert "Subject: Order 42" in text and "Message-ID: <m42@fabrikam.example>" in text
    assert "Why it is here: Refused by the local server" in text and "Fix: Add contoso.eu" in text
    assert "Please ship" not in text  # headers only


def test_a_message_removed_meanwhile_is_said_and_the_list_refreshed(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine, tmp_path: Path) -> None:
    tab = page(qtbot, controller)
    select(tab, 0)
    quarantine.remove("q-newer")  # resubmitted from the tray, say
    tab.headers_button.click()
    assert tab.headers_dialog is None
    assert "no longer in quarantine" in tab.status.text() and "Order 42" in tab.status.text()
    assert tab.model.rowCount() == 1 and not tab.delete_button.isEnabled()

    select(tab, 0)
    (controller.paths.quarantine_dir / "q-older.eml").unlink()  # only its .eml: the record is left
    target = tmp_path / "out.eml"
    assert not tab.export(tab.selected().id, target)  # type: ignore[union-attr]
    assert not target.exists() and "no longer in quarantine" in tab.status.text()
    assert tab.message_box is None  # not an error of the place chosen


def test_export_writes_the_message_and_keeps_it_in_quarantine(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine, tmp_path: Path) -> None:
    tab = page(qtbot, controller)
    select(tab, 0)
    target = tmp_path / "exported" / "order.eml"
    target.parent.mkdir()
    assert tab.export("q-newer", target)
    assert target.read_bytes() == MESSAGE
    assert "Exported to" in tab.status.text() and "still in quarantine" in tab.status.text()
    assert quarantine.message_path("q-newer").read_bytes() == MESSAGE and tab.model.rowCount() == 2
    assert list(target.parent.iterdir()) == [target]  # no partial file left beside it


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_export_to_an_unwritable_folder_says_so_and_loses_nothing(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/proc/version")  # not writable even by root
        target = locked / "order.eml"
    else:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
        target = folder / "order.eml"
    tab = page(qtbot, controller)
    select(tab, 0)
    assert not tab.export("q-newer", target)
    box = tab.message_box
    assert box is not None and box.isVisible() and box.windowTitle() == "Export failed"
    assert str(target) in box.text() and "still in quarantine" in box.text() and "Choose a folder" in box.text()
    assert "failed" in tab.status.text()
    click(box, QMessageBox.StandardButton.Ok)
    assert quarantine.message_path("q-newer").read_bytes() == MESSAGE and tab.model.rowCount() == 2
    assert quarantine.get("q-newer").subject == "Order 42"


def test_delete_asks_first_and_no_keeps_the_message(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine) -> None:
    tab = page(qtbot, controller)
    select(tab, 0)
    tab.delete_button.click()
    box = tab.delete_box
    assert box is not None and box.isVisible()
    assert "Order 42" in box.text() and "only copy" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
    click(box, QMessageBox.StandardButton.No)
    assert quarantine.message_path("q-newer").exists() and tab.model.rowCount() == 2

    select(tab, 0)
    tab.delete_button.click()
    click(tab.delete_box, QMessageBox.StandardButton.Yes)
    deadline = time.monotonic() + 5
    while tab.model.rowCount() != 1 and time.monotonic() < deadline:
        qtbot.wait(10)
    assert not quarantine.message_path("q-newer").exists()
    assert not (controller.paths.quarantine_dir / "q-newer.json").exists()
    assert [r.id for r in quarantine.records()] == ["q-older"] and tab.status.text() == "Deleted."
    store = EventStore(controller.paths.events_db)
    try:
        [said] = store.query(grep="Deleted the quarantined message")
    finally:
        store.close()
    assert said.id == EventId.QUARANTINE_DELETED and "q-newer" in said.text and "'Order 42'" in said.text
    assert "the Quarantine page" in said.text and said.subject == "Order 42"


def test_delete_of_a_message_already_gone_asks_nothing(
        qtbot: Any, controller: ConnectorController, quarantine: Quarantine) -> None:
    tab = page(qtbot, controller)
    select(tab, 0)
    quarantine.remove("q-newer")
    tab.delete_button.click()
    assert tab.delete_box is None and "no longer in quarantine" in tab.status.text()
    assert tab.model.rowCount() == 1
