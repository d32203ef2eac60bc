"""The headless runner and the hours of the week: ``Connector.run_forever`` with a clock the test moves.

The runner reads the wall clock through ``connector.now`` and waits in steps of
at most a minute; the test moves the clock and wakes the wait, as a minute's
step would, instead of sleeping for hours.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pop3gui.core.config.model import Config, DeliveryConfig, RecipientPolicy, ScheduleConfig, SmtpConfig
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.events.model import Event, EventBus, EventId, Severity
from pop3gui.core.schedule import WeekHours
from pop3gui.core.state.paths import Paths
from tests.conftest import Pop3User
from tests.support.office import Office, make_message
from tests.support.smtp_sink import SmtpSink

WORKING = WeekHours.from_table({"mon": "7-19", "tue": "7-19", "wed": "7-19", "thu": "7-19", "fri": "7-19",
                                "sat": "", "sun": ""})
SATURDAY = datetime(2024, 1, 6, 10, 0)  # 2024-01-01 is a Monday
MONDAY = datetime(2024, 1, 8, 7, 0)


class Clock:
    """The wall clock the connector reads; the test sets it."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Runner:
    """``run_forever`` as a task, its events, and the clock it reads."""

    connector: Connector
    clock: Clock
    events: list[Event] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    returned: int = 0  # run_cycle calls that have returned

    def start(self) -> None:
        run_cycle = self.connector.run_cycle

        async def counted(only: set[str] | None = None) -> CycleResult:
            result = await run_cycle(only)
            self.returned += 1
            return result

        self.connector.run_cycle = counted  # type: ignore[method-assign]
        self.task = asyncio.ensure_future(self.connector.run_forever())

    def set_clock(self, moment: datetime) -> None:
        """Move the wall clock and let the runner look at it now (as its next minute's step would)."""
        self.clock.moment = moment
        self.connector.wake()

    def of(self, eid: EventId, severity: Severity | None = None) -> list[Event]:
        return [e for e in self.events if e.id == eid and (severity is None or e.severity == severity)]

    @property
    def cycles(self) -> int:
        """Cycles whose run_cycle has returned: the runner reckons the next one from then, so the clock
        is moved only after (CYCLE_FINISHED comes before the cycle's health and housekeeping steps)."""
        return self.returned

    async def until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.task is not None
            if self.task.done():
                self.task.result()  # raises what ended it
                raise AssertionError("run_forever returned early")
            assert time.monotonic() < deadline, [e.text for e in self.events]
            await asyncio.sleep(0.02)

    async def settle(self) -> None:
        """Give the runner time to do what it would wrongly do (a cycle takes well under this)."""
        await asyncio.sleep(0.5)

    async def stop(self) -> None:
        self.connector.request_stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


def make_runner(config: Config, paths: Paths, start: datetime) -> Runner:
    bus = EventBus()
    connector = Connector(config, paths, bus)
    clock = Clock(start)
    connector.now = clock
    runner = Runner(connector, clock)
    bus.subscribe(runner.events.append)
    return runner


@pytest.fixture
async def sink_runner(sink: SmtpSink, tmp_path: Path, memory_keyring: object) -> AsyncIterator[Callable[..., Runner]]:
    """A runner over no accounts delivering to the sink: cycles are quick and need no mailbox."""
    made: list[Runner] = []

    def build(start: datetime, **schedule: object) -> Runner:
        config = Config(smtp=SmtpConfig(host="127.0.0.1", port=sink.port, timeout_s=5),
                        delivery=DeliveryConfig(undeliverable_to="admin@contoso.com"),
                        policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
                        schedule=ScheduleConfig(**schedule))  # type: ignore[arg-type]
        runner = make_runner(config, Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs"), start)
        made.append(runner)
        return runner

    yield build
    for runner in made:
        if runner.task is not None and not runner.task.done():
            await runner.stop()
        runner.connector.close()


@pytest.mark.servers
async def test_a_cycle_outside_the_hours_waits_then_delivers_real_mail_when_the_hours_open(
        office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="weekend mail"))
    config = office.use(office.account_for(pop3_user, "alice"), schedule=ScheduleConfig(interval_min=15,
                                                                                       hours=WORKING))
    runner = make_runner(config, office.paths, SATURDAY)
    try:
        runner.start()
        await runner.until(lambda: bool(runner.of(EventId.RUNNER_SCHEDULE)))
        said = runner.of(EventId.RUNNER_SCHEDULE)
        assert [e.severity for e in said] == [Severity.INFO]
        assert "Mon 07:00" in said[0].text and "Mon-Fri 7:00-19:00" in said[0].text
        await runner.settle()
        runner.set_clock(SATURDAY + timedelta(hours=30))  # Sunday 16:00: still closed
        await runner.settle()
        assert runner.of(EventId.CYCLE_STARTED) == []
        assert office.local.delivered() == []
        assert len(office.isp.messages(pop3_user.name)) == 1  # still waiting at the ISP

        runner.set_clock(MONDAY)
        await runner.until(lambda: runner.cycles == 1, timeout=30)
        delivered = await asyncio.to_thread(office.local.wait_for_delivered, 1, 30)
        assert delivered[0]["Subject"] == "weekend mail"
        await runner.until(lambda: office.isp.messages(pop3_user.name) == [])
        assert len(runner.of(EventId.RUNNER_SCHEDULE)) == 1  # the open hours needed no word
    finally:
        await runner.stop()
        runner.connector.close()


async def test_with_the_schedule_off_no_cycle_runs_and_the_runner_says_so(
        sink_runner: Callable[..., Runner]) -> None:
    runner = sink_runner(MONDAY + timedelta(hours=3), enabled=False)
    runner.start()
    await runner.until(lambda: bool(runner.of(EventId.RUNNER_SCHEDULE)))
    said = runner.of(EventId.RUNNER_SCHEDULE)
    assert len(said) == 1 and said[0].severity == Severity.WARNING
    assert "enabled = false" in said[0].text and "pop3gui run --once" in (said[0].fix or "")
    runner.connector.push_arrived("alice")  # a push changes nothing either
    runner.set_clock(MONDAY + timedelta(days=1))
    await runner.settle()
    assert runner.of(EventId.CYCLE_STARTED) == []
    assert runner.task is not None and not runner.task.done()
    await runner.stop()  # returns on request_stop
    assert runner.of(EventId.CYCLE_STARTED) == []


async def test_one_word_per_closed_period_not_per_wait(sink_runner: Callable[..., Runner]) -> None:
    monday = MONDAY + timedelta(hours=3)  # Monday 10:00, open
    runner = sink_runner(monday, interval_min=15, hours=WORKING)
    runner.start()
    await runner.until(lambda: runner.cycles == 1)  # open at start: the first cycle runs at once
    runner.set_clock(monday + timedelta(minutes=10))
    await runner.settle()
    assert runner.cycles == 1  # not due yet
    runner.set_clock(monday + timedelta(minutes=15))
    await runner.until(lambda: runner.cycles == 2)

    runner.set_clock(monday.replace(hour=18, minute=50))  # the next is due; the one after falls at 19:05
    await runner.until(lambda: runner.cycles == 3)
    await runner.until(lambda: len(runner.of(EventId.RUNNER_SCHEDULE)) == 1)
    assert "Tue 07:00" in runner.of(EventId.RUNNER_SCHEDULE)[0].text
    for later in (timedelta(minutes=20), timedelta(hours=2), timedelta(hours=8), timedelta(hours=12, minutes=9)):
        runner.set_clock(monday.replace(hour=18, minute=50) + later)  # many waits, all closed
        await runner.settle()
    assert runner.cycles == 3
    assert len(runner.of(EventId.RUNNER_SCHEDULE)) == 1

    tuesday = monday.replace(hour=7, minute=0) + timedelta(days=1)
    runner.set_clock(tuesday)
    await runner.until(lambda: runner.cycles == 4)
    assert len(runner.of(EventId.RUNNER_SCHEDULE)) == 1
    runner.set_clock(tuesday.replace(hour=18, minute=55))  # the second closed period: a second word
    await runner.until(lambda: runner.cycles == 5)
    await runner.until(lambda: len(runner.of(EventId.RUNNER_SCHEDULE)) == 2)
    assert all(e.severity == Severity.INFO for e in runner.of(EventId.RUNNER_SCHEDULE))
    assert "Wed 07:00" in runner.of(EventId.RUNNER_SCHEDULE)[1].text


async def test_a_push_outside_the_hours_waits_for_them(sink_runner: Callable[..., Runner]) -> None:
    runner = sink_runner(SATURDAY, interval_min=15, hours=WORKING)
    runner.start()
    await runner.until(lambda: bool(runner.of(EventId.RUNNER_SCHEDULE)))
    runner.connector.push_arrived("alice")
    await runner.settle()
    assert runner.of(EventId.CYCLE_STARTED) == []
    runner.set_clock(MONDAY + timedelta(minutes=1))
    await runner.until(lambda: runner.cycles == 1)
    await runner.settle()
    assert runner.cycles == 1  # the scheduled cycle covered the push


async def test_a_push_inside_the_hours_runs_between_scheduled_cycles(sink_runner: Callable[..., Runner]) -> None:
    runner = sink_runner(MONDAY, interval_min=15, hours=WORKING)
    runner.start()
    await runner.until(lambda: runner.cycles == 1)
    runner.set_clock(MONDAY + timedelta(minutes=5))
    runner.connector.push_arrived("alice")
    await runner.until(lambda: runner.cycles == 2)
    assert runner.of(EventId.RUNNER_SCHEDULE) == []


async def test_a_week_without_an_open_hour_runs_nothing_and_warns_once(sink_runner: Callable[..., Runner]) -> None:
    never = WeekHours((frozenset(),) * 7)
    runner = sink_runner(MONDAY, hours=never)
    runner.start()
    await runner.until(lambda: bool(runner.of(EventId.RUNNER_SCHEDULE)))
    for days in range(1, 4):
        runner.set_clock(MONDAY + timedelta(days=days))
        await runner.settle()
    said = runner.of(EventId.RUNNER_SCHEDULE)
    assert len(said) == 1 and said[0].severity == Severity.WARNING and "No hour" in said[0].text
    assert runner.cycles == 0



async def test_a_clock_set_back_does_not_delay_the_next_cycle_by_the_jump(sink_runner: Callable[..., Runner]) -> None:
    noon = MONDAY.replace(hour=12)
    runner = sink_runner(noon, interval_min=15, hours=WORKING)
    runner.start()
    await runner.until(lambda: runner.cycles == 1)
    runner.set_clock(noon - timedelta(hours=2))  # the clock is corrected two hours back
    await runner.settle()
    assert runner.cycles == 1
    runner.set_clock(noon - timedelta(hours=2) + timedelta(minutes=15))  # one interval after the jump
    await runner.until(lambda: runner.cycles == 2)


async def test_a_new_interval_takes_effect_without_waiting_out_the_old_one(
        sink_runner: Callable[..., Runner]) -> None:
    runner = sink_runner(MONDAY, interval_min=60, hours=WORKING)
    runner.start()
    await runner.until(lambda: runner.cycles == 1)
    config = runner.connector.config
    runner.connector.use_config(dataclasses.replace(config, schedule=ScheduleConfig(interval_min=5, hours=WORKING)))
    runner.set_clock(MONDAY + timedelta(minutes=5))
    await runner.until(lambda: runner.cycles == 2)
    runner.set_clock(MONDAY + timedelta(minutes=9))
    await runner.settle()
    assert runner.cycles == 2  # the new rhythm: the next at 07:10
