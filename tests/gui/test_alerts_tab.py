"""The Alerts page and the tray's alert notifications, offscreen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AlertsConfig, Config, RecipientPolicy
from pop3gui.core.desktop.notify_limit import NotifyLimiter
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.health.store import AlertRow, HealthStore
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.properties import PropertiesWindow
from pop3gui.gui.tray import KIND_ALERT, KIND_RECOVERED, TrayRunner

CONFIG = Config(policies=(RecipientPolicy("Default", ("contoso.com",), "contoso.com"),))


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")


@pytest.fixture
def window(qtbot: Any, paths: Paths) -> Iterator[PropertiesWindow]:
    controller = ConnectorController(paths, CONFIG)
    win = PropertiesWindow(controller)
    qtbot.addWidget(win)
    yield win
    win.hide()
    controller.close()


def test_the_settings_load_and_apply_with_their_off_switches(window: PropertiesWindow, paths: Paths) -> None:
    tab = window.alerts
    assert tab.failed.value() == 3 and tab.no_mail.value() == 24 and tab.quarantine.value() == 4
    assert tab.mail_from.placeholderText() == "empty: postmaster@contoso.com"
    tab.mail_to.setText("admin@contoso.com")
    tab.mail_to.textEdited.emit("admin@contoso.com")
    tab.no_mail.check.setChecked(False)
    tab.failed.spin.setValue(5)
    tab.desktop.setChecked(False)
    assert window.apply_changes()
    saved = load_config(paths.config_file).alerts
    assert saved == AlertsConfig(mail_to="admin@contoso.com", no_mail_hours=0, failed_cycles=5, desktop=False)
    tab.mail_to.setText("not an address")
    tab.mail_to.textEdited.emit("not an address")
    assert tab.problems() and not tab.mail_to_error.isHidden()
    tab.mail_to.setText("admin@contoso.com")  # as saved: closing the window asks nothing
    tab.mail_to.textEdited.emit("admin@contoso.com")
    assert not window.dirty


def test_the_active_alerts_are_listed_after_a_run(window: PropertiesWindow, paths: Paths, tmp_path: Path) -> None:
    tab = window.alerts
    assert tab.active.topLevelItemCount() == 0 and "no cycle has run" in tab.active_note.text()
    with HealthStore(paths.health_db) as store, store.transaction() as db:
        store.insert_alert(db, AlertRow("failed_cycles:alice", "failed_cycles", "alice", "", "error",
                                        "pop3gui: account alice has failed 3 cycles in a row", "t", "c", "f",
                                        datetime(2030, 1, 7, 9, 30).timestamp()))
    window.controller.run_finished.emit(None)
    assert tab.active.topLevelItemCount() == 1
    item = tab.active.topLevelItem(0)
    assert [item.text(i) for i in range(4)] == ["2030-01-07 09:30", "error", "alice",
                                                "account alice has failed 3 cycles in a row"]
    window.show()
    window.tabs.setCurrentWidget(tab)
    target = tmp_path / "alerts.png"
    window.grab().save(str(target))
    image = QImage(str(target))
    assert image.width() > 400 and image.height() > 300


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_tray_shows_an_alert_and_its_end_once_each_when_desktop_alerts_are_on(qtbot: Any, paths: Paths) -> None:
    controller = ConnectorController(paths, CONFIG)
    tray = TrayRunner(controller, limiter=NotifyLimiter(60, clock=Clock()))
    try:
        raised = Event(EventId.ALERT_RAISED, Severity.ERROR,
                       "Alert failed_cycles: Account alice has failed 3 cycles in a row: login refused",
                       account="alice", fix="Store the right password.")
        with qtbot.waitSignal(tray.notified) as shown:
            controller.bus.emit(raised)
        assert shown.args[0] == KIND_ALERT and "failed 3 cycles" in shown.args[2] and "Fix:" in shown.args[2]
        with qtbot.waitSignal(tray.notified) as shown:
            controller.bus.emit(Event(EventId.ALERT_RECOVERED, Severity.INFO,
                                      "Alert failed_cycles ended: account alice works again.", account="alice"))
        assert shown.args[0] == KIND_RECOVERED and shown.args[2] == "account alice works again."
        assert len(tray.shown) == 2

        controller.config = replace(CONFIG, alerts=AlertsConfig(desktop=False))
        controller.bus.emit(raised)
        assert len(tray.shown) == 2
    finally:
        tray.menu.deleteLater()
        tray.deleteLater()
        controller.close()
