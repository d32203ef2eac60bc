"""The hours of the week: reading and writing a day's text, the next open moment, open hours, the summary."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from pop3gui.core.schedule import DAY_KEYS, HoursError, WeekHours, format_day, next_run, parse_day

ALL = frozenset(range(24))
WORKING = WeekHours.from_table({"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19",
                                "sat": "", "sun": ""})
# 2024-01-01 is a Monday.
MON = datetime(2024, 1, 1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 0 = Monday 2024-01-01, day 7 the next Monday."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


@pytest.mark.parametrize(("text", "hours"), [
    ("", set()),
    ("8", {8}),
    ("0", {0}),
    ("23", {23}),
    ("7-19", set(range(7, 19))),
    ("0-24", set(range(24))),
    ("7-12,13-19", set(range(7, 12)) | set(range(13, 19))),
    (" 7 - 12 , 13-19 ", set(range(7, 12)) | set(range(13, 19))),
    ("9-12,10-14", set(range(9, 14))),  # overlaps join
    ("7-19,", set(range(7, 19))),
])
def test_parse_day_reads_hours_ranges_and_lists(text: str, hours: set[int]) -> None:
    assert parse_day(text) == frozenset(hours)


@pytest.mark.parametrize(("text", "words"), [
    ("19-7", "ends before it starts"),
    ("7-7", "ends before it starts"),
    ("25", "outside the day"),
    ("24", "outside the day"),
    ("0-25", "outside the day"),
    ("a-b", "is not an hour"),
    ("seven", "is not an hour"),
    ("7:30-19", "is not an hour"),
    ("-3", "is not an hour"),
    ("7-", "is not an hour"),
])
def test_parse_day_refuses_what_is_not_hours_and_says_which_part(text: str, words: str) -> None:
    with pytest.raises(HoursError) as caught:
        parse_day(text)
    assert words in str(caught.value)
    assert repr(text.strip()) in str(caught.value) or repr(text) in str(caught.value)


def test_a_range_past_midnight_is_refused_with_how_to_write_it() -> None:
    with pytest.raises(HoursError, match=r'"0-7,19-24"'):
        parse_day("19-7")


@pytest.mark.parametrize(("hours", "text"), [
    (set(), ""),
    ({8}, "8"),
    (set(range(7, 19)), "7-19"),
    (set(range(24)), "0-24"),
    ({0, 1, 2, 22, 23}, "0-3,22-24"),
    ({1, 3, 5}, "1,3,5"),
])
def test_format_day_writes_the_shortest_text(hours: set[int], text: str) -> None:
    assert format_day(hours) == text


def random_grids(count: int, seed: int = 20240101) -> list[WeekHours]:
    rng = random.Random(seed)
    grids = [WeekHours(), WeekHours((frozenset(),) * 7), WORKING]
    for _ in range(count):
        density = rng.random()
        grids.append(WeekHours(tuple(frozenset(h for h in range(24) if rng.random() < density) for _ in range(7))))
    return grids


@pytest.mark.parametrize("grid", random_grids(200))
def test_any_grid_survives_text_and_table_round_trips(grid: WeekHours) -> None:
    for hours in grid.days:
        text = format_day(hours)
        assert parse_day(text) == hours
        assert format_day(parse_day(text)) == text  # the text is canonical
    table = grid.to_table()
    assert WeekHours.from_table(table) == grid
    assert all(key in DAY_KEYS for key in table)
    assert all(grid.days[DAY_KEYS.index(key)] != ALL for key in table)  # all-day days are left out


@pytest.mark.parametrize("grid", random_grids(60, seed=7))
def test_next_open_is_the_first_open_moment_by_brute_force(grid: WeekHours) -> None:
    rng = random.Random(hash(grid.days) & 0xFFFF)
    for _ in range(5):
        start = at(rng.randrange(7), rng.randrange(24), rng.randrange(60))
        found = grid.next_open(start)
        # Walk minute by minute up to a week and a bit.
        expected = None
        moment = start
        for _ in range(8 * 24 * 60):
            if grid.is_open(moment):
                expected = moment
                break
            moment = (moment + timedelta(minutes=1)).replace(second=0)
        if expected is not None and expected != start:
            expected = expected.replace(minute=0)  # the walk lands on the hour's first minute
        assert found == expected
        assert next_run(grid, start, 30) == grid.next_open(start + timedelta(minutes=30))


def test_from_table_names_an_unknown_day_and_lists_the_days() -> None:
    with pytest.raises(HoursError) as caught:
        WeekHours.from_table({"monday": "7-19"})
    assert "monday is not a day" in str(caught.value)
    assert "mon, tue, wed, thu, fri, sat, sun" in str(caught.value)


def test_from_table_names_the_day_with_the_wrong_hours() -> None:
    with pytest.raises(HoursError, match=r"^wed: '19-7' ends before it starts"):
        WeekHours.from_table({"mon": "7-19", "wed": "19-7"})


def test_a_day_left_out_runs_all_day_and_an_empty_day_never() -> None:
    week = WeekHours.from_table({"sun": ""})
    assert week.days[:6] == (ALL,) * 6 and week.days[6] == frozenset()
    assert WeekHours.from_table({}) == WeekHours() and WeekHours().always
    assert not week.always and not week.never


def test_weekhours_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError):
        WeekHours((ALL,) * 6)
    with pytest.raises(ValueError):
        WeekHours((frozenset({24}),) + (ALL,) * 6)


def test_is_open_uses_the_weekday_and_the_hour_cell() -> None:
    assert WORKING.is_open(at(0, 7)) and WORKING.is_open(at(4, 18, 59))
    assert not WORKING.is_open(at(0, 6, 59)) and not WORKING.is_open(at(0, 19))
    assert not WORKING.is_open(at(5, 10)) and not WORKING.is_open(at(6, 10))


def test_next_open_inside_the_hours_is_the_moment_itself() -> None:
    moment = at(2, 10, 17).replace(second=5, microsecond=9)
    assert WORKING.next_open(moment) == moment


def test_next_open_after_friday_evening_is_monday_morning() -> None:
    assert WORKING.next_open(at(4, 19, 0)) == at(7, 7)
    assert WORKING.next_open(at(5, 3, 30)) == at(7, 7)
    assert WORKING.next_open(at(6, 23, 59)) == at(7, 7)


def test_next_open_across_the_year_and_the_week_end() -> None:
    sunday_only = WeekHours.from_table({k: "" for k in DAY_KEYS[:6]} | {"sun": "22"})
    new_year_eve = datetime(2023, 12, 31, 23, 30)  # a Sunday, after the open hour
    assert sunday_only.next_open(new_year_eve) == datetime(2024, 1, 7, 22)
    monday_night = WeekHours.from_table({"mon": "0", **{k: "" for k in DAY_KEYS[1:]}})
    assert monday_night.next_open(datetime(2023, 12, 31, 23, 59, 59)) == datetime(2024, 1, 1, 0)
    # The only open hour is the one just left: the answer is a whole week on.
    assert monday_night.next_open(datetime(2024, 1, 1, 1)) == datetime(2024, 1, 8, 0)


def test_a_week_without_an_open_hour_has_no_next_open() -> None:
    never = WeekHours.from_table({k: "" for k in DAY_KEYS})
    assert never.never
    assert never.next_open(at(0, 0)) is None
    assert next_run(never, at(3, 12), 15) is None


def test_next_run_moves_a_run_due_outside_the_hours_to_the_next_open_hour() -> None:
    assert next_run(WORKING, at(0, 10), 15) == at(0, 10, 15)
    assert next_run(WORKING, at(0, 18, 50), 15) == at(1, 7)  # 19:05 is closed
    assert next_run(WORKING, at(4, 18, 50), 15) == at(7, 7)  # Friday evening -> Monday
    assert next_run(WeekHours(), at(6, 23, 50), 15) == at(7, 0, 5)


def test_open_hours_between_counts_only_the_chosen_hours() -> None:
    assert WORKING.open_hours_between(at(0, 0), at(1, 0)) == 12
    assert WORKING.open_hours_between(at(0, 0), at(7, 0)) == 60
    assert WORKING.open_hours_between(at(4, 18, 30), at(7, 7, 45)) == pytest.approx(0.5 + 0.75)
    assert WORKING.open_hours_between(at(5, 0), at(7, 0)) == 0
    assert WORKING.open_hours_between(at(0, 10), at(0, 10)) == 0
    assert WORKING.open_hours_between(at(0, 11), at(0, 10)) == 0
    assert WeekHours().open_hours_between(at(0, 10, 20), at(2, 10, 20)) == pytest.approx(48)


@pytest.mark.parametrize(("table", "text"), [
    ({}, "Every day, all day"),
    ({k: "" for k in DAY_KEYS}, "Never (no hour is chosen)"),
    ({"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19", "sat": "9-12", "sun": ""},
     "Mon-Fri 7:00-19:00; Sat 9:00-12:00; Sun never"),
    ({"sat": "", "sun": ""}, "Mon-Fri all day; Sat-Sun never"),
    ({"wed": "7-12,13-19"}, "Mon-Tue all day; Wed 7:00-12:00, 13:00-19:00; Thu-Sun all day"),
    ({"mon": "22-24"}, "Mon 22:00-24:00; Tue-Sun all day"),
])
def test_summary_texts(table: dict[str, str], text: str) -> None:
    assert WeekHours.from_table(table).summary() == text
