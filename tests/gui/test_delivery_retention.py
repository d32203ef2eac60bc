"""The Delivery page shows and saves how long quarantined mail and the event history are kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from pop3gui.core.config.model import DeliveryConfig, EventsConfig
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.delivery import DeliveryTab
from tests.gui.test_config_tabs import BASE, round_trip


@pytest.fixture
def controller(tmp_path: Path, qtbot: QtBot) -> Iterator[ConnectorController]:
    ctl = ConnectorController(Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs"), BASE)
    yield ctl
    ctl.close()


def test_the_keep_days_and_the_size_cap_round_trip(qtbot: QtBot, controller: ConnectorController,
                                                  tmp_path: Path) -> None:
    tab = DeliveryTab(controller)
    qtbot.addWidget(tab)
    tab.load(BASE)
    assert (tab.quarantine_days.value(), tab.keep_days.value(), tab.max_mb.value()) == (30, 90, 200)
    assert tab.apply(BASE) == BASE
    tab.quarantine_days.setValue(0)
    assert tab.quarantine_days.text() == "Until I act"
    tab.keep_days.setValue(365)
    tab.max_mb.setValue(0)
    assert tab.max_mb.text() == "No size limit" and tab.problems() == []
    changed = tab.apply(BASE)
    assert changed.delivery == DeliveryConfig(undeliverable_to="admin@contoso.com", quarantine_keep_days=0)
    assert changed.events == EventsConfig(keep_days=365, max_mb=0)
    assert round_trip(changed, tmp_path) == changed


def test_a_cap_too_small_to_keep_a_day_is_a_problem(qtbot: QtBot, controller: ConnectorController) -> None:
    tab = DeliveryTab(controller)
    qtbot.addWidget(tab)
    tab.load(BASE)
    tab.max_mb.setValue(5)
    assert tab.problems() and "at least 10 MB" in tab.problems()[0]
    tab.max_mb.setValue(10)
    assert tab.problems() == []
