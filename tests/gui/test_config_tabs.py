"""Policies, Scheduling and Delivery pages: edits round-trip through the TOML file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, RecipientPolicy
from pop3gui.core.config.save import save_config
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.delivery import DeliveryTab
from pop3gui.gui.tabs.policies import PoliciesTab
from pop3gui.gui.tabs.schedule import ScheduleTab

BASE = Config(
    delivery=DeliveryConfig(undeliverable_to="admin@contoso.com"),
    policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
    accounts=(AccountConfig(name="bob", host="pop.isp.example", username="bob", deliver_to="bob@fabrikam.com"),),
)


@pytest.fixture
def controller(tmp_path: Path, qtbot: QtBot) -> ConnectorController:
    paths = Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
    ctl = ConnectorController(paths, BASE)
    yield ctl
    ctl.close()


def round_trip(config: Config, tmp_path: Path) -> Config:
    path = tmp_path / "roundtrip.toml"
    save_config(config, path)
    return load_config(path)


def test_policy_warning_names_the_uncovered_domain_and_its_fix_works(qtbot: QtBot, tmp_path: Path) -> None:
    tab = PoliciesTab()
    qtbot.addWidget(tab)
    tab.load(BASE)
    tab.draft_changed(BASE)
    assert len(tab.fix_buttons) == 1
    assert "fabrikam.com" in tab.fix_buttons[0].text() and "Default Policy" in tab.fix_buttons[0].text()
    shown = " ".join(label.text() for label in tab.warnings_box.findChildren(QLabel) if label.isVisibleTo(tab))
    assert "5.7.1" in shown and "bob@fabrikam.com" in shown

    with qtbot.waitSignal(tab.edited):
        tab.fix_buttons[0].click()
    fixed = tab.apply(BASE)
    assert fixed.policies[0].domains == ("contoso.com", "fabrikam.com")
    tab.draft_changed(fixed)
    assert tab.fix_buttons == [] and tab.all_clear.isVisibleTo(tab)
    assert round_trip(fixed, tmp_path).policies == fixed.policies


def test_policy_editing_add_domain_primary_and_validation(qtbot: QtBot, tmp_path: Path) -> None:
    tab = PoliciesTab()
    qtbot.addWidget(tab)
    tab.load(BASE)
    qtbot.keyClicks(tab.domain_edit, "not a domain")
    assert tab.domain_error.isVisibleTo(tab) and "not a domain name" in tab.domain_error.text()
    assert not tab.add_domain_button.isEnabled()
    tab.domain_edit.clear()
    qtbot.keyClicks(tab.domain_edit, "contoso.local")
    assert tab.add_domain_button.isEnabled()
    tab.add_domain_button.click()
    tab.domain_list.setCurrentRow(1)
    tab.primary_button.click()
    changed = tab.apply(BASE)
    assert changed.policies[0].domains == ("contoso.com", "contoso.local")
    assert changed.policies[0].primary == "contoso.local"
    assert round_trip(changed, tmp_path).policies == changed.policies


def test_policy_without_domain_is_a_problem(qtbot: QtBot) -> None:
    tab = PoliciesTab()
    qtbot.addWidget(tab)
    tab.load(BASE)
    tab.add_policy_button.click()
    assert tab.problems() and "no domain" in tab.problems()[0]


def test_schedule_round_trip(qtbot: QtBot, controller: ConnectorController, tmp_path: Path) -> None:
    tab = ScheduleTab(controller)
    qtbot.addWidget(tab)
    tab.load(BASE)
    with qtbot.waitSignal(tab.edited):
        tab.interval.setValue(45)
    tab.enabled_box.setChecked(False)
    assert not tab.interval.isEnabled()
    changed = tab.apply(BASE)
    assert (changed.schedule.interval_min, changed.schedule.enabled) == (45, False)
    assert round_trip(changed, tmp_path).schedule == changed.schedule


def test_delivery_round_trip_and_validation(qtbot: QtBot, controller: ConnectorController, tmp_path: Path) -> None:
    tab = DeliveryTab(controller)
    qtbot.addWidget(tab)
    tab.load(BASE)
    assert tab.apply(BASE) == BASE  # loading and applying changes nothing
    tab.undeliverable.clear()
    qtbot.keyClicks(tab.undeliverable, "postmaster")
    assert tab.problems() and "not an e-mail address" in tab.problems()[0]
    tab.undeliverable.clear()
    qtbot.keyClicks(tab.undeliverable, "postmaster@contoso.com")
    tab.host.setText("mail.contoso.local")
    tab.port.setValue(587)
    tab.security.setCurrentIndex(tab.security.findData("starttls"))
    tab.max_size.setValue(10)
    tab.log_level.setCurrentIndex(tab.log_level.findData("debug"))
    assert tab.problems() == []
    changed = tab.apply(BASE)
    assert changed.smtp == replace(BASE.smtp, host="mail.contoso.local", port=587, security="starttls")
    assert changed.delivery == DeliveryConfig(undeliverable_to="postmaster@contoso.com", max_message_kb=10240)
    assert changed.logging.level == "debug"
    assert round_trip(changed, tmp_path) == changed


def test_typed_smtp_password_counts_as_pending(qtbot: QtBot, controller: ConnectorController) -> None:
    tab = DeliveryTab(controller)
    qtbot.addWidget(tab)
    tab.load(BASE)
    assert not tab.has_pending_secret()
    qtbot.keyClicks(tab.password, "x")
    assert tab.has_pending_secret()
    assert tab.password.echoMode() == tab.password.EchoMode.Password


def test_one_fix_per_domain_however_many_addresses_need_it(qtbot: QtBot) -> None:
    config = replace(BASE, delivery=DeliveryConfig(undeliverable_to="postmaster@fabrikam.com"))
    tab = PoliciesTab()
    qtbot.addWidget(tab)
    tab.load(config)
    tab.draft_changed(config)
    [fix] = tab.fix_buttons
    shown = " ".join(label.text() for label in tab.warnings_box.findChildren(QLabel) if label.isVisibleTo(tab))
    assert "bob@fabrikam.com" in shown and "postmaster@fabrikam.com" in shown
    fix.click()
    assert tab.apply(config).policies[0].domains == ("contoso.com", "fabrikam.com")
