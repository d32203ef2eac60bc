"""[events] keep_days and max_mb, [delivery] quarantine_keep_days: defaults, off switches, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop3gui.core.config.load import load_config, parse_config
from pop3gui.core.config.model import Config, EventsConfig
from pop3gui.core.config.save import config_to_dict, save_config
from pop3gui.core.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "resources" / "example-config.toml"


def load(**tables: dict[str, object]) -> Config:
    return parse_config({"version": 1, **tables}, "config.toml")


def test_the_defaults_bound_every_store() -> None:
    config = load()
    assert config.events == EventsConfig() and (config.events.keep_days, config.events.max_mb) == (90, 200)
    assert config.delivery.quarantine_keep_days == 30
    example = load_config(EXAMPLE)
    assert (example.events.keep_days, example.events.max_mb, example.delivery.quarantine_keep_days) == (90, 200, 30)


def test_0_turns_each_limit_off_and_the_values_survive_saving(tmp_path: Path) -> None:
    config = load(events={"keep_days": 0, "max_mb": 0}, delivery={"quarantine_keep_days": 0})
    assert (config.events.keep_days, config.events.max_mb, config.delivery.quarantine_keep_days) == (0, 0, 0)
    path = tmp_path / "config.toml"
    save_config(load(events={"keep_days": 365, "max_mb": 50}, delivery={"quarantine_keep_days": 60}), path)
    again = load_config(path)
    assert (again.events.keep_days, again.events.max_mb, again.delivery.quarantine_keep_days) == (365, 50, 60)
    assert config_to_dict(again)["events"] == {"keep_days": 365, "max_mb": 50}


@pytest.mark.parametrize(("tables", "key", "words"), [
    ({"events": {"keep_days": -1}}, "events.keep_days", "between 0 and 36500"),
    ({"events": {"keep_days": "90"}}, "events.keep_days", "whole number"),
    ({"events": {"max_mb": 5}}, "events.max_mb", "0 (no size limit) or between 10"),
    ({"events": {"max_mb": -200}}, "events.max_mb", "0 (no size limit)"),
    ({"events": {"max_days": 3}}, "events.max_days", "unknown key"),
    ({"delivery": {"quarantine_keep_days": -3}}, "delivery.quarantine_keep_days", "between 0 and 36500"),
    ({"delivery": {"quarantine_keep_days": 1.5}}, "delivery.quarantine_keep_days", "whole number"),
])
def test_a_wrong_value_names_the_key_and_what_is_wrong(tables: dict[str, dict[str, object]], key: str,
                                                       words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**tables)
    text = info.value.explain()
    assert key in text and words in text, text
    if "between" in words:  # a value out of range also says what to write instead
        assert info.value.fix and ("0" in info.value.fix), info.value.fix
