"""Writing the configuration file: the documented layout, atomic and private."""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import AccountConfig, Config, RecipientPolicy
from pop3gui.core.config.save import config_to_dict, save_config
from pop3gui.core.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "resources" / "example-config.toml"


def test_the_document_uses_the_documented_names_and_order() -> None:
    config = Config(policies=(RecipientPolicy("Default", ("contoso.com",)),),
                    accounts=(AccountConfig(name="a", host="h", username="u", deliver_to="a@contoso.com"),))
    document = config_to_dict(config)
    assert list(document) == ["version", "smtp", "schedule", "alerts", "delivery", "events", "logging",
                              "performance", "recipient_policy", "account", "routing_rule", "oauth_provider"]
    assert document["recipient_policy"] == [{"name": "Default", "domains": ["contoso.com"], "primary": ""}]
    assert document["account"][0]["envelope_headers"] == list(AccountConfig.envelope_headers)
    assert document["routing_rule"] == []


def test_save_round_trips_and_is_private(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    changed = replace(config, schedule=replace(config.schedule, interval_min=30))
    target = tmp_path / "sub" / "config.toml"
    save_config(changed, target)
    assert load_config(target) == changed
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["config.toml"]


def test_a_saved_default_config_writes_every_key(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    save_config(Config(), target)
    written = tomllib.loads(target.read_text(encoding="utf-8"))
    assert written["smtp"]["timeout_s"] == 60.0 and written["performance"]["pop3_pipeline"] == 32


def test_save_refuses_an_invalid_config_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    save_config(Config(), target)
    before = target.read_bytes()
    bad = Config(accounts=(AccountConfig(name="x", host="h", username="u", deliver_to=""),))
    with pytest.raises(ConfigError):
        save_config(bad, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]
