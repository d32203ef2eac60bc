"""The window demo: the whole KB Q325464 story driven through the real properties window, offscreen."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.core
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


from pop3gui.core.config.load import load_config  # noqa: E402
from pop3gui.core.events.model import EventId  # noqa: E402
from pop3gui.demo.sandbox import Sandbox  # noqa: E402
from pop3gui.demo.story import (  # noqa: E402
    ACCOUNTS,
    DANA,
    ERIN,
    IMAP_ACCOUNT,
    IMAP_USER,
    INVOICE_SUBJECT,
    KB_SUBJECT,
    MOVE_TO,
    OAUTH_SUBJECT,
    UNDELIVERABLE,
)
from pop3gui.demo.sign_in import press_allow  # noqa: E402
from pop3gui.gui.demo_window import DemoSession, open_demo, tray_for  # noqa: E402
from pop3gui.gui.account_model import Column, State  # noqa: E402
from pop3gui.gui.dialogs.account import AccountDialog  # noqa: E402

pytestmark = pytest.mark.gui

SHOTS = os.environ.get("POP3GUI_DEMO_SHOTS", "")  # a folder: save the window at each step (for a human to look)






@pytest.fixture
def session(qtbot: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[DemoSession]:
    before = keyring.core._keyring_backend
    demo = loop.run_until_complete(open_demo(Sandbox(tmp_path / "sandbox")))
    qtbot.addWidget(demo.window)
    demo.window.show()
    try:
        yield demo
    finally:
        loop.run_until_complete(demo.close())
        demo.sandbox.cleanup()
    assert keyring.core._keyring_backend is before  # the in-memory keyring was only borrowed


def shot(qtbot: Any, session: DemoSession, name: str) -> None:
    if SHOTS:
        qtbot.wait(20)  # let deferred deletes and layouts settle, as between two clicks
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        session.window.grab().save(str(Path(SHOTS) / f"{name}.png"))


def test_the_whole_story_fix_with_one_click_and_resubmit(qtbot: Any, loop: asyncio.AbstractEventLoop,
                                                          session: DemoSession) -> None:
    window, controller, sandbox = session.window, session.controller, session.sandbox
    banner = window.banner.title.text()
    assert "Demo sandbox" in banner and str(sandbox.folder) in banner
    assert "sandbox" in window.windowTitle()
    assert window.tabs.currentWidget() is window.policies  # step 1 first

    # 1. Before any mail flows: both addresses are listed, with one fix for the one domain.
    warnings = window.policies.warnings_box.title()
    assert "(2)" in warnings
    # One fix for the one domain, naming both addresses that need it.
    assert [b.text() for b in window.policies.fix_buttons] == ['Add contoso.eu to policy "Default Policy"']
    fix = window.policies.fix_buttons[0]
    shot(qtbot, session, "1-policies-before")

    # 2. Retrieve Now.
    window.tabs.setCurrentWidget(window.schedule)
    task = controller.retrieve_now()
    assert task is not None
    result = loop.run_until_complete(task)
    assert result is not None and result.exit_code == 1  # a real run reports the refusal
    # The OAuth2 mailbox was signed in when the sandbox started: its mail came with the first Retrieve Now.
    assert [m.subject for m in sandbox.exchange.messages(DANA)] == [OAUTH_SUBJECT]
    [dana] = [a for a in result.accounts if a.account == "dana"]
    assert not dana.failed and dana.delivered == 1
    shot(qtbot, session, "2-scheduling-after-run")

    # 3. Events: the 5.7.1 refusal with cause and fix; the message is quarantined, not lost.
    model = window.events.model
    qtbot.waitUntil(lambda: any(model.event_at(r).id == EventId.QUARANTINED for r in range(model.rowCount())),
                    timeout=3000)
    events = [model.event_at(r) for r in range(model.rowCount())]
    [refusal] = [e for e in events if e.id == EventId.RECIPIENT_REFUSED]
    assert refusal.text.endswith(f"{ERIN} (domain not accepted): 550 5.7.1 Unable to relay for {ERIN}")
    assert "contoso.eu" in refusal.cause and "Add contoso.eu" in refusal.fix
    [kept] = [e for e in events if e.id == EventId.QUARANTINED]
    assert f"{UNDELIVERABLE} refused it too" in kept.text
    window.tabs.setCurrentWidget(window.events)
    row = next(r for r in range(model.rowCount()) if model.event_at(r) is refusal)
    window.events.view.selectRow(window.events.proxy.mapFromSource(model.index(row, 0)).row())
    shot(qtbot, session, "3-events")

    window.tabs.setCurrentWidget(window.quarantine)
    assert window.quarantine.model.rowCount() == 1
    record = window.quarantine.model.record(0)
    assert record.subject == KB_SUBJECT and ERIN in record.reason
    window.quarantine.view.selectRow(0)
    shot(qtbot, session, "4-quarantine-before")
    assert sandbox.exchange.messages(ERIN) == []

    # 4. One click, Apply: the config is saved and the sandbox Exchange follows it.
    window.tabs.setCurrentWidget(window.policies)
    fix.click()
    assert window.policies.fix_buttons == []
    assert window.apply_changes()
    saved = load_config(sandbox.paths.config_file)
    assert saved.policies[0].domains == ("contoso.com", "contoso.eu")
    assert saved.account("dana").auth == "oauth2" and saved.oauth_providers == sandbox.config.oauth_providers
    assert "contoso.eu" in sandbox.exchange.accepted_domains
    status = window.banner.status.text()
    assert window.banner.status.isVisibleTo(window) and "now accepts contoso.eu too" in status
    assert "accepted domains" in status
    shot(qtbot, session, "5-policies-fixed")

    # 5. Resubmit from the quarantine: erin has her message, the quarantine is empty.
    window.tabs.setCurrentWidget(window.quarantine)
    outcome = loop.run_until_complete(window.quarantine.resubmit(record.id))
    assert outcome == "Delivered."
    assert [m.subject for m in sandbox.exchange.messages(ERIN)] == [KB_SUBJECT]
    assert window.quarantine.model.rowCount() == 0
    assert list(sandbox.paths.quarantine_dir.glob("*.eml")) == []
    shot(qtbot, session, "6-quarantine-after")


def test_the_oauth_mailbox_is_listed_and_signed_in_when_the_window_opens(session: DemoSession) -> None:
    window, sandbox = session.window, session.sandbox
    row = window.accounts.model.row_of("dana")
    assert row >= 0 and window.accounts.model.account_at(row).username == DANA
    assert sandbox.sign_in_page.sign_ins == 1 and sandbox.oauth_story().signed_in_as == DANA
    note = window.banner.oauth_note.text()
    assert window.banner.oauth_note.isVisibleTo(window) and "Mail Accounts" in note and DANA in note
    assert "Sign in again…" in note  # the button the account editor offers (see the next test)


def test_the_imap_mailbox_is_listed_and_retrieve_now_delivers_and_moves_its_mail(
        qtbot: Any, loop: asyncio.AbstractEventLoop, session: DemoSession) -> None:
    window, controller, sandbox = session.window, session.controller, session.sandbox
    model = window.accounts.model
    row = model.row_of(IMAP_ACCOUNT)
    assert row >= 0 and model.account_at(row).protocol == "imap" and model.account_at(row).username == IMAP_USER
    assert f"127.0.0.1:{sandbox.imap.port}" in model.data(model.index(row, Column.SERVER))
    task = controller.retrieve_now()
    assert task is not None
    result = loop.run_until_complete(task)
    assert result is not None
    [info] = [a for a in result.accounts if a.account == IMAP_ACCOUNT]
    assert not info.failed and info.delivered == 2
    assert [m.subject for m in sandbox.exchange.messages(ACCOUNTS)] == [INVOICE_SUBJECT]
    assert sandbox.imap.messages(IMAP_USER) == [] and len(sandbox.imap.messages(IMAP_USER, MOVE_TO)) == 2
    qtbot.waitUntil(lambda: (status := model.status(IMAP_ACCOUNT)) is not None and status.state is State.OK,
                    timeout=3000)
    assert "2 delivered" in model.data(model.index(row, Column.LAST_RESULT))


def test_sign_in_again_in_the_account_editor_goes_through_the_demo_sign_in_page(
        qtbot: Any, loop: asyncio.AbstractEventLoop, session: DemoSession) -> None:
    window, sandbox = session.window, session.sandbox
    window.accounts.open_page = press_allow  # the sandbox plays the user in the browser

    async def edit_dana() -> AccountDialog:  # as Edit… does it: on the running loop
        return window.accounts.make_dialog(sandbox.config.account("dana"))

    dialog = loop.run_until_complete(edit_dana())
    qtbot.addWidget(dialog)
    box = dialog.sign_in_box
    assert box.isVisibleTo(dialog) and dialog.status_check is not None
    loop.run_until_complete(dialog.status_check)  # the sign-in made when the demo opened
    assert box.record is not None and box.record.identity == DANA
    assert box.sign_in_button.text() == "Sign &in again…"
    task = dialog.sign_in()
    assert task is not None
    record = loop.run_until_complete(task)
    assert record is not None and record.identity == DANA
    assert sandbox.sign_in_page.sign_ins == 2


def test_saving_without_a_new_domain_changes_nothing_in_the_exchange(session: DemoSession) -> None:
    window = session.window
    window.schedule.interval.setValue(5)
    assert window.apply_changes()
    assert session.sandbox.exchange.accepted_domains == {"contoso.com"}
    assert not window.banner.status.isVisibleTo(window)
    assert session.sandbox.config.schedule.interval_min == 5


def test_tray_opens_the_demo_window_or_says_why_not(session: DemoSession, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from PySide6.QtWidgets import QSystemTrayIcon

    assert tray_for(session) is None  # offscreen: no tray
    assert "no system tray; showing the window instead" in capsys.readouterr().out
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    runner = tray_for(session)
    assert runner is not None
    assert runner.window is session.window
    runner.hide()
    runner.deleteLater()
