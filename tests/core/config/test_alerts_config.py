"""The [alerts] section: defaults that suit an office, off switches, and clear errors."""

from __future__ import annotations

import pytest
import tomli_w

from pop3gui.core.config.load import parse_config
from pop3gui.core.config.model import AlertsConfig, Config
from pop3gui.core.config.save import config_to_dict
from pop3gui.core.errors import ConfigError


def load(alerts: dict[str, object]) -> Config:
    return parse_config({"version": 1, "alerts": alerts}, "config.toml")


def test_a_file_without_alerts_gets_the_documented_defaults() -> None:
    alerts = load({}).alerts
    assert alerts == AlertsConfig()
    assert (alerts.no_mail_hours, alerts.failed_cycles, alerts.quarantine_hours) == (24, 3, 4)
    assert alerts.sign_in and alerts.policy_refusal and alerts.desktop
    assert alerts.mail_to == "" and alerts.mail_from == ""


def test_every_condition_can_be_turned_off() -> None:
    alerts = load({"no_mail_hours": 0, "failed_cycles": 0, "quarantine_hours": 0, "sign_in": False,
                   "policy_refusal": False, "desktop": False}).alerts
    assert (alerts.no_mail_hours, alerts.failed_cycles, alerts.quarantine_hours) == (0, 0, 0)
    assert not (alerts.sign_in or alerts.policy_refusal or alerts.desktop)


def test_the_section_survives_saving_and_loading() -> None:
    config = load({"mail_to": "it@contoso.com", "mail_from": "pop3gui@contoso.com", "failed_cycles": 5})
    document = config_to_dict(config)
    again = parse_config(document)
    assert again.alerts == config.alerts
    assert "[alerts]" in tomli_w.dumps(document)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("mail_to", "not an address", "alerts.mail_to"),
    ("mail_from", "@contoso.com", "alerts.mail_from"),
    ("failed_cycles", -1, "alerts.failed_cycles"),
    ("no_mail_hours", "24", "alerts.no_mail_hours: must be a whole number"),
    ("quarantine_hours", 10**9, "alerts.quarantine_hours"),
    ("desktop", "yes", "must be"),
])
def test_a_wrong_value_names_the_key(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({key: value})
    assert words in caught.value.explain()


def test_an_unknown_key_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"mail": "it@contoso.com"})
    text = caught.value.explain()
    assert "alerts.mail" in text and "mail_to" in text
