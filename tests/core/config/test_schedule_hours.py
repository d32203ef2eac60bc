"""[schedule] hours in the file: read with errors that name the key and the fix, written only where it matters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w

from pop3gui.core.config.load import load_config, parse_config
from pop3gui.core.config.model import Config, ScheduleConfig
from pop3gui.core.config.save import config_to_dict, save_config
from pop3gui.core.errors import ConfigError
from pop3gui.core.schedule import WeekHours


def load(schedule: dict[str, object]) -> Config:
    return parse_config({"version": 1, "schedule": schedule}, "config.toml")


def test_without_hours_every_hour_of_the_week_runs() -> None:
    schedule = load({}).schedule
    assert schedule.hours == WeekHours() and schedule.hours.always
    assert schedule == ScheduleConfig()


def test_the_file_s_days_become_the_grid_and_a_day_left_out_runs_all_day() -> None:
    hours = load({"interval_min": 10, "hours": {"mon": "7-19", "sat": "9-12", "sun": ""}}).schedule.hours
    assert hours.days[0] == frozenset(range(7, 19))
    assert hours.days[1:5] == (frozenset(range(24)),) * 4
    assert hours.days[5] == frozenset(range(9, 12)) and hours.days[6] == frozenset()


def test_hours_from_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('version = 1\n[schedule]\ninterval_min = 5\nhours = { mon = "7-12, 13-19", sun = "" }\n',
                    encoding="utf-8")
    schedule = load_config(path).schedule
    assert schedule.interval_min == 5
    assert schedule.hours.to_table() == {"mon": "7-12,13-19", "sun": ""}


@pytest.mark.parametrize(("hours", "words"), [
    ({"mon": "19-7"}, "schedule.hours: mon: '19-7' ends before it starts"),
    ({"tue": "25"}, "schedule.hours: tue: '25' is outside the day"),
    ({"fri": "a-b"}, "schedule.hours: fri: 'a-b' is not an hour"),
    ({"monday": "7-19"}, "schedule.hours: monday is not a day; the days are mon, tue, wed, thu, fri, sat, sun"),
    ({"mon": 7}, "schedule.hours: must be a table of day = \"hours\""),
    ("7-19", "schedule.hours: must be a table of day = \"hours\""),
    ({"mon": ["7-19"]}, "must be a table"),
])
def test_wrong_hours_name_the_key_and_give_the_fix(hours: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"hours": hours})
    text = caught.value.explain()
    assert words in text
    assert caught.value.fix and 'mon = "7-19"' in caught.value.fix


def test_a_wrong_day_in_a_file_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('version = 1\n[schedule]\nhours = { wed = "18-6" }\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = caught.value.explain()
    assert str(path) in text and "schedule.hours" in text and "wed" in text and "0-6,18-24" in text


def test_save_writes_only_the_days_that_do_not_run_all_day() -> None:
    hours = WeekHours.from_table({"mon": "7-19", "tue": "0-24", "sat": "9-12", "sun": ""})
    document = config_to_dict(Config(schedule=ScheduleConfig(hours=hours)))
    assert document["schedule"]["hours"] == {"mon": "7-19", "sat": "9-12", "sun": ""}


def test_save_leaves_hours_out_when_every_day_runs_all_day() -> None:
    document = config_to_dict(Config(schedule=ScheduleConfig(interval_min=20)))
    assert "hours" not in document["schedule"]
    assert "\nhours" not in tomli_w.dumps(document)
    all_day = WeekHours.from_table({"mon": "0-24"})
    assert "hours" not in config_to_dict(Config(schedule=ScheduleConfig(hours=all_day)))["schedule"]


@pytest.mark.parametrize("table", [
    {},
    {"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19", "sat": "", "sun": ""},
    {"wed": "0,2,4-6,23"},
    {day: "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
])
def test_hours_survive_saving_and_loading(table: dict[str, str], tmp_path: Path) -> None:
    config = Config(schedule=ScheduleConfig(interval_min=7, enabled=False, hours=WeekHours.from_table(table)))
    path = tmp_path / "config.toml"
    save_config(config, path)
    again = load_config(path)
    assert again.schedule == config.schedule
    assert again == replace(config, version=again.version)
