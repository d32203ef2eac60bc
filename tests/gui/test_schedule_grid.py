"""The hours of the week on the Scheduling page, and the window's timer that honours them.

The grid is driven with the mouse and the keyboard as a user would; the
controller reads a clock the test sets (``now=``) and the test calls
``check_schedule`` where its minute's timer step would.  Runs that move mail
go to the real Dovecot and Postfix (``office``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config, DeliveryConfig, RecipientPolicy, ScheduleConfig, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.health.store import HealthStore
from pop3gui.core.schedule import WeekHours
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import TIMER_STEP_MS, ConnectorController
from pop3gui.gui.hours_grid import WORKING_HOURS, HoursGrid
from pop3gui.gui.tabs.schedule import ScheduleTab
from pop3gui.gui.tray import TrayRunner
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

OFFICE_HOURS = WeekHours.from_table({"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19",
                                     "sat": "9-12", "sun": ""})
FRIDAY_EVENING = datetime(2024, 1, 5, 18, 50)  # 2024-01-01 is a Monday
SATURDAY_9 = datetime(2024, 1, 6, 9, 0)
SUNDAY = datetime(2024, 1, 7, 15, 0)
NEVER = WeekHours((frozenset(),) * 7)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def base_config(**schedule: object) -> Config:
    return Config(smtp=SmtpConfig(host="127.0.0.1", port=1, timeout_s=2),
                  delivery=DeliveryConfig(undeliverable_to="admin@contoso.com"),
                  policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
                  schedule=ScheduleConfig(**schedule))  # type: ignore[arg-type]


@pytest.fixture
def make_controller(tmp_path: Path, qtbot: QtBot) -> Iterator[Callable[..., ConnectorController]]:
    made: list[ConnectorController] = []

    def make(config: Config, clock: Clock, paths: Paths | None = None) -> ConnectorController:
        paths = paths or Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
        controller = ConnectorController(paths, config, now=clock)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()


def shown_grid(qtbot: QtBot, hours: WeekHours = WeekHours()) -> HoursGrid:
    grid = HoursGrid()
    qtbot.addWidget(grid)
    grid.resize(grid.sizeHint())
    grid.set_hours(hours)
    grid.show()
    qtbot.waitExposed(grid)
    return grid


def centre(grid: HoursGrid, day: int, hour: int) -> QPoint:
    return grid.cell_rect(day, hour).center()


# --- the grid ------------------------------------------------------------------------------


def test_a_click_toggles_one_cell(qtbot: QtBot) -> None:
    grid = shown_grid(qtbot, WORKING_HOURS)
    with qtbot.waitSignal(grid.changed):
        qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 5, 10))  # Saturday 10:00 on
    assert grid.is_on(5, 10)
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 0, 7))  # Monday 7:00 off
    assert not grid.is_on(0, 7)
    assert grid.hours().to_table() == {"mon": "8-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19",
                                       "sat": "10", "sun": ""}


def test_a_drag_paints_the_first_cell_s_new_state_over_every_cell(qtbot: QtBot) -> None:
    grid = shown_grid(qtbot, WORKING_HOURS)
    # From Monday 6:00 (off, so on) across 6-9 and down to Tuesday 9:00: the on cells stay on.
    QTest.mousePress(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 0, 6))
    for day, hour in ((0, 6), (0, 7), (0, 8), (0, 9), (1, 9)):
        QTest.mouseMove(grid, centre(grid, day, hour))
    QTest.mouseRelease(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 1, 9))
    assert grid.hours().days[0] == frozenset(range(6, 19))
    assert grid.hours().days[1] == frozenset(range(7, 19))
    # From Wednesday 12:00 (on, so off) to 14:00: a lunch break.
    QTest.mousePress(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 2, 12))
    for hour in (12, 13, 14):
        QTest.mouseMove(grid, centre(grid, 2, hour))
    QTest.mouseRelease(grid, Qt.MouseButton.LeftButton, pos=centre(grid, 2, 14))
    assert grid.hours().to_table()["wed"] == "7-12,15-19"
    QTest.mouseMove(grid, centre(grid, 3, 12))  # the button is up: moving paints nothing
    assert grid.is_on(3, 12)


def test_a_day_label_toggles_the_day_and_an_hour_header_the_hour_on_all_days(qtbot: QtBot) -> None:
    grid = shown_grid(qtbot, WORKING_HOURS)
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.day_label_rect(6).center())  # Sunday: all on
    assert grid.hours().days[6] == frozenset(range(24))
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.day_label_rect(6).center())  # and off again
    assert grid.hours().days[6] == frozenset()
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.hour_header_rect(20).center())  # 20:00 every day
    assert all(20 in day for day in grid.hours().days)
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.hour_header_rect(20).center())
    assert not any(20 in day for day in grid.hours().days)
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.hour_header_rect(7).center())  # on Mon-Fri only:
    assert all(7 in day for day in grid.hours().days)  # all on first
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=grid.hour_header_rect(7).center())
    assert not any(7 in day for day in grid.hours().days)


def test_the_keyboard_moves_a_focus_cell_extends_with_shift_and_toggles_with_space(qtbot: QtBot) -> None:
    grid = shown_grid(qtbot, NEVER)
    grid.setFocus()
    for _ in range(3):
        qtbot.keyClick(grid, Qt.Key.Key_Right)
    qtbot.keyClick(grid, Qt.Key.Key_Down)
    assert grid.focus_cell == (1, 3)
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert grid.hours().to_table()["tue"] == "3"
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert grid.hours().never
    # A block: Tuesday 3:00 to Thursday 5:00.
    qtbot.keyClick(grid, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(grid, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(grid, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(grid, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    with qtbot.waitSignal(grid.changed):
        qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert grid.hours().to_table() == {"mon": "", "tue": "3-6", "wed": "3-6", "thu": "3-6", "fri": "", "sat": "",
                                       "sun": ""}
    qtbot.keyClick(grid, Qt.Key.Key_Left)  # an arrow without Shift leaves the block
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    assert grid.hours().to_table()["thu"] == "3,5"
    for _ in range(30):
        qtbot.keyClick(grid, Qt.Key.Key_Up)  # stops at the edge
    assert grid.focus_cell == (0, 4)
    qtbot.keyClick(grid, Qt.Key.Key_End)
    assert grid.focus_cell == (0, 23)
    assert "Monday 23:00 to 24:00: off" in grid.accessibleDescription()
    assert grid.accessibleName()


# --- the page -------------------------------------------------------------------------------


def test_the_page_loads_edits_and_applies_the_hours(qtbot: QtBot, tmp_path: Path,
                                                    make_controller: Callable[..., ConnectorController]) -> None:
    config = base_config(hours=OFFICE_HOURS)
    tab = ScheduleTab(make_controller(config, Clock(FRIDAY_EVENING)))
    qtbot.addWidget(tab)
    tab.load(config)
    tab.resize(1000, 680)
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.grid.hours() == OFFICE_HOURS
    assert tab.summary.text() == "Chosen hours: Mon-Fri 7:00-19:00; Sat 9:00-12:00; Sun never"
    assert tab.apply(config) == config

    with qtbot.waitSignal(tab.edited):
        qtbot.mouseClick(tab.grid, Qt.MouseButton.LeftButton, pos=tab.grid.day_label_rect(6).center())
    assert "Sun all day" in tab.summary.text()
    changed = tab.apply(config)
    assert changed.schedule.hours.days[6] == frozenset(range(24))
    path = tmp_path / "saved.toml"
    save_config(changed, path)
    assert load_config(path).schedule.hours == changed.schedule.hours
    assert 'sun = ""' not in path.read_text(encoding="utf-8")

    tab.clear_button.click()
    assert tab.apply(config).schedule.hours.never and "Never" in tab.summary.text()
    tab.all_button.click()
    assert tab.apply(config).schedule.hours.always
    tab.working_button.click()
    assert tab.apply(config).schedule.hours == WORKING_HOURS


def test_grid_and_interval_are_off_while_the_schedule_is_off(
        qtbot: QtBot, make_controller: Callable[..., ConnectorController]) -> None:
    config = base_config(hours=OFFICE_HOURS)
    tab = ScheduleTab(make_controller(config, Clock(FRIDAY_EVENING)))
    qtbot.addWidget(tab)
    tab.load(config)
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.grid.isEnabled() and tab.interval.isEnabled()
    tab.enabled_box.click()
    assert not tab.grid.isEnabled() and not tab.interval.isEnabled()
    assert not tab.working_button.isEnabled() and not tab.clear_button.isEnabled()
    qtbot.mouseClick(tab.grid, Qt.MouseButton.LeftButton, pos=centre(tab.grid, 6, 3))
    assert tab.apply(config).schedule == replace(config.schedule, enabled=False)
    tab.load(base_config(enabled=False))
    assert not tab.grid.isEnabled()


# --- the timer --------------------------------------------------------------------------------


def test_next_run_honours_the_hours(qtbot: QtBot, make_controller: Callable[..., ConnectorController]) -> None:
    clock = Clock(datetime(2024, 1, 3, 10, 0))  # Wednesday 10:00, open
    controller = make_controller(base_config(interval_min=15, hours=OFFICE_HOURS), clock)
    assert controller.next_run_at == datetime(2024, 1, 3, 10, 15)
    assert 0 < controller._timer.interval() <= TIMER_STEP_MS

    clock.moment = FRIDAY_EVENING  # 19:05 is closed: Saturday 9:00
    controller._reschedule()
    assert controller.next_run_at == SATURDAY_9
    tab = ScheduleTab(controller)
    qtbot.addWidget(tab)
    assert tab.next_run.text() == "Sat 09:00 (when the chosen hours begin)"
    assert controller._timer.isActive() and controller._timer.interval() <= TIMER_STEP_MS

    # A new configuration without any hour: nothing is scheduled, and the page says why.
    controller.config = base_config(hours=NEVER)
    with qtbot.waitSignal(controller.schedule_changed):
        controller._reschedule()
    assert controller.next_run_at is None
    assert tab.next_run.text() == "not scheduled: no hour chosen"
    controller.config = base_config(enabled=False, hours=OFFICE_HOURS)
    controller._reschedule()
    assert tab.next_run.text() == "not scheduled (automatic retrieval is off)"


def test_the_start_runs_now_inside_the_hours_and_waits_outside(
        qtbot: QtBot, make_controller: Callable[..., ConnectorController]) -> None:
    clock = Clock(SUNDAY)
    controller = make_controller(base_config(interval_min=15, hours=OFFICE_HOURS), clock)
    controller.start_schedule()
    assert not controller.running and controller.next_run_at == datetime(2024, 1, 8, 7, 0)
    controller.config = base_config(interval_min=15)  # all day: the start is now
    controller._reschedule(start=True)
    assert controller.next_run_at == SUNDAY and controller._timer.interval() == 0
    controller.set_paused(True)  # this test has no event loop for the run itself


def test_a_clock_that_jumps_into_closed_hours_waits_for_the_next_open_one(
        qtbot: QtBot, make_controller: Callable[..., ConnectorController]) -> None:
    clock = Clock(datetime(2024, 1, 5, 18, 30))
    controller = make_controller(base_config(interval_min=15, hours=OFFICE_HOURS), clock)
    assert controller.next_run_at == datetime(2024, 1, 5, 18, 45)
    clock.moment = SUNDAY  # the computer slept through the week end
    controller.check_schedule()
    assert not controller.running
    assert controller.next_run_at == datetime(2024, 1, 8, 7, 0)
    assert controller._timer.interval() <= TIMER_STEP_MS


@pytest.fixture
def office_controller(loop: asyncio.AbstractEventLoop, office: Office
                      ) -> Iterator[Callable[[Clock], ConnectorController]]:
    made: list[ConnectorController] = []

    def make(clock: Clock) -> ConnectorController:
        controller = ConnectorController(office.paths, office.config, now=clock)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        loop.run_until_complete(asyncio.wait_for(controller.stop(), 60))
        controller.close()


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await asyncio.sleep(0.02)


@pytest.mark.servers
def test_the_timer_holds_mail_outside_the_hours_and_retrieve_now_always_runs(
        loop: asyncio.AbstractEventLoop, office: Office, pop3_user: Pop3User,
        office_controller: Callable[[Clock], ConnectorController]) -> None:
    office.use(office.account_for(pop3_user, "alice"), schedule=ScheduleConfig(interval_min=15, hours=OFFICE_HOURS))
    clock = Clock(datetime(2024, 1, 5, 18, 40))  # Friday; the run due 18:55 is inside the hours
    controller = office_controller(clock)
    finished: list[object] = []
    controller.run_finished.connect(finished.append)

    async def scenario() -> None:
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="friday"))
        clock.moment = SUNDAY  # the computer woke on Sunday: the due run waits for Monday
        controller.check_schedule()
        await asyncio.sleep(0.5)
        assert not controller.running and finished == []
        assert office.local.delivered() == []

        controller.retrieve_now()  # by hand: runs on a Sunday too
        await until(lambda: len(finished) == 1)
        delivered = await asyncio.to_thread(office.local.wait_for_delivered, 1, 30)
        assert delivered[0]["Subject"] == "friday"
        assert controller.next_run_at == datetime(2024, 1, 8, 7, 0)  # not Sunday 15:15

        # Mail announced on Sunday (a push) is kept, and fetched when Monday's hours open.
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="sunday"))
        controller._push_arrived("alice")
        await asyncio.sleep(0.5)
        assert not controller.running and len(finished) == 1
        clock.moment = datetime(2024, 1, 8, 6, 59)
        controller.check_schedule()
        await asyncio.sleep(0.3)
        assert len(finished) == 1
        clock.moment = datetime(2024, 1, 8, 7, 0)
        controller.check_schedule()  # the timer's step at 7:00
        await until(lambda: len(finished) == 2)
        delivered = await asyncio.to_thread(office.local.wait_for_delivered, 2, 30)
        assert sorted(m["Subject"] for m in delivered) == ["friday", "sunday"]
        assert controller.next_run_at == datetime(2024, 1, 8, 7, 15)

    loop.run_until_complete(asyncio.wait_for(scenario(), 120))


def test_the_timer_step_is_at_most_a_minute(qtbot: QtBot, make_controller: Callable[..., ConnectorController]
                                            ) -> None:
    controller = make_controller(base_config(interval_min=600), Clock(datetime(2024, 1, 3, 10, 0)))
    assert controller.next_run_at == datetime(2024, 1, 3, 20, 0)
    assert controller._timer.isActive() and controller._timer.interval() == TIMER_STEP_MS
    controller.set_paused(True)
    assert not controller._timer.isActive() and controller.next_run_at is None
    controller.set_paused(False)
    assert controller._timer.isActive() and controller.next_run_at == datetime(2024, 1, 3, 20, 0)


def test_the_tray_runner_says_the_day_of_a_later_run_and_status_reads_its_plan(
        qtbot: QtBot, make_controller: Callable[..., ConnectorController]) -> None:
    clock = Clock(SUNDAY)
    controller = make_controller(base_config(interval_min=15, hours=OFFICE_HOURS), clock)
    with HealthStore(controller.paths.health_db) as store:
        assert store.runner().next_run is None  # a window alone plans nothing for status
    controller.hold_runner_lock()  # as the tray runner does
    try:
        controller.start_schedule()
        assert controller.next_run_at == datetime(2024, 1, 8, 7, 0)
        tray = TrayRunner(controller)
        assert tray.summary_text().endswith("next Mon 07:00")
        with HealthStore(controller.paths.health_db) as store:
            assert store.runner().next_run == datetime(2024, 1, 8, 7, 0).timestamp()
        controller.set_paused(True)
        with HealthStore(controller.paths.health_db) as store:
            assert store.runner().next_run is None and store.runner().note == "the schedule is paused"
        tray.deleteLater()
    finally:
        controller.set_paused(True)
