"""The whole properties window: save, guard, Retrieve Now against the real servers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config
from pop3gui.core.events.model import EventId
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.properties import PropertiesWindow
from tests.conftest import Pop3User
from tests.support.office import Office, make_message






def make_window(qtbot: Any, paths: Paths, config: Config) -> PropertiesWindow:
    controller = ConnectorController(paths, config)
    window = PropertiesWindow(controller)
    qtbot.addWidget(window)
    return window


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")


def test_window_title_tabs_and_buttons(qtbot: Any, paths: Paths) -> None:
    window = make_window(qtbot, paths, Config())
    assert window.windowTitle() == "POP3 Connector Properties"
    titles = [window.tabs.tabText(i).replace("&", "") for i in range(window.tabs.count())]
    assert titles == ["Mail Accounts", "Recipient Policies", "Scheduling", "Delivery", "Events", "Quarantine",
                      "Alerts"]
    assert not window.apply_button.isEnabled()
    window.controller.close()


def test_apply_writes_the_whole_file_and_ok_closes(qtbot: Any, paths: Paths) -> None:
    window = make_window(qtbot, paths, Config())
    window.schedule.interval.setValue(30)
    assert window.apply_button.isEnabled() and window.dirty
    window.apply_button.click()
    assert load_config(paths.config_file).schedule.interval_min == 30
    assert not window.apply_button.isEnabled()
    window.delivery.undeliverable.setText("not an address")
    window.delivery.undeliverable.textEdited.emit("not an address")
    assert window.problems()
    window.controller.close()


def test_unsaved_changes_guard(qtbot: Any, paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(qtbot, paths, Config())
    window.show()
    window.schedule.interval.setValue(45)
    answers: list[QMessageBox.StandardButton] = [QMessageBox.StandardButton.Cancel]
    asked: list[str] = []

    def answer(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.reject()
    assert window.isVisible() and asked and "Save the changes" in asked[0]
    answers.append(QMessageBox.StandardButton.Discard)
    window.reject()
    assert not window.isVisible()
    assert not paths.config_file.exists()
    assert window.schedule.interval.value() == Config().schedule.interval_min  # the draft was dropped
    window.controller.close()


def test_policy_fix_from_the_window_is_saved(qtbot: Any, paths: Paths) -> None:
    from pop3gui.core.config.model import AccountConfig, RecipientPolicy

    config = Config(policies=(RecipientPolicy("Default Policy", ("contoso.com",)),),
                    accounts=(AccountConfig(name="erin", host="pop.isp.example", username="erin",
                                            deliver_to="erin@contoso.eu"),))
    window = make_window(qtbot, paths, config)
    [fix] = window.policies.fix_buttons
    assert "contoso.eu" in fix.text()
    fix.click()
    assert window.policies.fix_buttons == []
    window.apply_button.click()
    assert load_config(paths.config_file).policies[0].domains == ("contoso.com", "contoso.eu")
    window.controller.close()


@pytest.mark.servers
def test_retrieve_now_fills_events_live_and_the_loop_stays_responsive(
        qtbot: Any, loop: asyncio.AbstractEventLoop, office: Office, pop3_user: Pop3User) -> None:
    """A 500-message run: events appear while it runs; no stall near a second (the benchmark has figures)."""
    for i in range(500):
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject=f"m{i}"))
    config = office.use(office.account_for(pop3_user, "alice"))
    window = make_window(qtbot, office.paths, replace(config, schedule=replace(config.schedule, enabled=False)))
    window.show()
    model = window.events.model
    rows_before = model.rowCount()

    async def scenario() -> tuple[float, int, Any]:
        stalls: list[float] = []
        rows_seen_mid_run: list[int] = []
        task = window.controller.retrieve_now()
        assert task is not None and window.controller.running

        async def probe() -> None:
            while not task.done():
                started = time.perf_counter()
                await asyncio.sleep(0.01)
                stalls.append(time.perf_counter() - started - 0.01)
                rows_seen_mid_run.append(model.rowCount())

        await asyncio.gather(task, probe())
        return max(stalls), max(rows_seen_mid_run), task.result()

    worst, rows_mid_run, result = loop.run_until_complete(scenario())
    assert result is not None and result.exit_code == 0
    assert worst < 1.0, f"the GUI loop stalled for {worst:.3f} s"
    assert rows_mid_run > rows_before + 10, "events must appear while the run is going"
    qtbot.waitUntil(lambda: any(model.event_at(r).id == EventId.CYCLE_FINISHED
                                for r in range(max(0, model.rowCount() - 5), model.rowCount())), timeout=2000)
    office.local.wait_for_delivered(500, timeout=60)
    assert office.isp.messages(pop3_user.name) == []
    window.controller.close()


def test_the_window_command_opens_the_window_and_ends_cleanly_when_it_is_closed(qapp: Any, paths: Paths) -> None:
    """`pop3gui` (no command) end to end, offscreen: the window shows, closing it ends the process with 0."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from pop3gui.core.config.save import save_config
    from pop3gui.gui.app import run_window

    save_config(replace(Config(), schedule=replace(Config().schedule, enabled=False)), paths.config_file)
    seen: dict[str, int] = {}

    def close_it() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, PropertiesWindow) and w.isVisible()]
        seen["windows"] = len(windows)
        for window in windows:
            window.reject()  # nothing edited: closes

    QTimer.singleShot(300, close_it)
    try:
        code = run_window(paths)
    finally:
        asyncio.set_event_loop(None)
    assert seen["windows"] == 1 and code == 0
